/* cp-compression.h: Connect compression (identity, gzip)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib.h>
#include "cp-version-macros.h"
#include "cp-types.h"

G_BEGIN_DECLS

/**
 * CpCompression:
 * @CP_COMPRESSION_IDENTITY: no compression (`identity`)
 * @CP_COMPRESSION_GZIP: gzip (RFC 1952), `gzip`
 *
 * Message compression algorithms.
 */
typedef enum {
  CP_COMPRESSION_IDENTITY,
  CP_COMPRESSION_GZIP,
} CpCompression;

CP_AVAILABLE_IN_ALL
const char *cp_compression_to_string   (CpCompression  compression);
CP_AVAILABLE_IN_ALL
gboolean    cp_compression_from_string (const char    *name,
                                        CpCompression *out_compression);

CP_AVAILABLE_IN_ALL
GBytes     *cp_compress                (CpCompression  compression,
                                        GBytes        *data,
                                        GError       **error);
CP_AVAILABLE_IN_ALL
GBytes     *cp_decompress              (CpCompression  compression,
                                        GBytes        *data,
                                        gsize          max_size,
                                        GError       **error);

G_END_DECLS
