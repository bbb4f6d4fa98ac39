/* cpctl-describe.h: a service of a FileDescriptorProto, as .proto text
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Appends to @out the declaration of service @name ("pkg.Service") of the
 * serialized FileDescriptorProto @data (from server reflection, so any
 * bytes): its methods with their stream markers and message types.
 * Returns FALSE (and appends nothing) when the file does not declare it,
 * or is malformed (then *@malformed is set). */
gboolean cpctl_describe_service (const guint8 *data,
                                 gsize         len,
                                 const char   *name,
                                 GString      *out,
                                 gboolean     *malformed);

G_END_DECLS
