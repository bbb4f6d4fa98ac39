/* cp-codec.h: Connect codecs (binary protobuf, proto3 JSON)
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
 * CpCodec:
 * @CP_CODEC_PROTO: binary protobuf (`proto`)
 * @CP_CODEC_JSON: proto3 JSON mapping (`json`)
 *
 * Message codecs. The codec name appears in content types
 * (`application/proto`, `application/connect+json`).
 */
typedef enum {
  CP_CODEC_PROTO,
  CP_CODEC_JSON,
} CpCodec;

CP_AVAILABLE_IN_ALL
const char *cp_codec_to_string   (CpCodec     codec);
CP_AVAILABLE_IN_ALL
gboolean    cp_codec_from_string (const char *name,
                                  CpCodec    *out_codec);

G_END_DECLS
