/* cp-message.h: GObject base class over a protobuf-c message
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-codec.h"

G_BEGIN_DECLS

#define CP_TYPE_MESSAGE (cp_message_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (CpMessage, cp_message, CP, MESSAGE, GObject)

/**
 * CpMessageClass:
 * @parent_class: the parent class
 *
 * Subclasses (generated code, or hand-written ones) bind the class to a
 * protobuf-c descriptor in class_init with [method@ConnectPlugin.MessageClass.set_descriptor].
 */
struct _CpMessageClass
{
  GObjectClass parent_class;

  /*< private >*/
  gconstpointer descriptor;  /* const ProtobufCMessageDescriptor * */
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
CpMessage  *cp_message_new             (GType          message_type);
CP_AVAILABLE_IN_ALL
CpMessage  *cp_message_new_from_bytes  (GType          message_type,
                                        CpCodec        codec,
                                        GBytes        *data,
                                        GError       **error);
CP_AVAILABLE_IN_ALL
const char *cp_message_get_full_name   (CpMessage     *message);

CP_AVAILABLE_IN_ALL
GBytes     *cp_message_serialize       (CpMessage     *message,
                                        CpCodec        codec,
                                        GError       **error);
CP_AVAILABLE_IN_ALL
gboolean    cp_message_parse           (CpMessage     *message,
                                        CpCodec        codec,
                                        GBytes        *data,
                                        GError       **error);
CP_AVAILABLE_IN_ALL
GBytes     *cp_message_to_bytes        (CpMessage     *message);
CP_AVAILABLE_IN_ALL
char       *cp_message_to_json         (CpMessage     *message);
CP_AVAILABLE_IN_ALL
CpMessage  *cp_message_copy            (CpMessage     *message);
CP_AVAILABLE_IN_ALL
gboolean    cp_message_equal           (CpMessage     *a,
                                        CpMessage     *b);

CP_AVAILABLE_IN_ALL
gboolean    cp_message_get_field       (CpMessage     *message,
                                        const char    *name,
                                        GValue        *value,
                                        GError       **error);
CP_AVAILABLE_IN_ALL
gboolean    cp_message_set_field       (CpMessage     *message,
                                        const char    *name,
                                        const GValue  *value,
                                        GError       **error);

CP_AVAILABLE_IN_ALL
GType       cp_message_type_from_name  (const char    *full_name);

/* C-only API over the underlying protobuf-c struct. */
CP_AVAILABLE_IN_ALL
void        cp_message_class_set_descriptor (CpMessageClass *klass,
                                             gconstpointer   descriptor);
CP_AVAILABLE_IN_ALL
gconstpointer cp_message_class_get_descriptor (CpMessageClass *klass);
CP_AVAILABLE_IN_ALL
gpointer    cp_message_get_c_message   (CpMessage     *message);
CP_AVAILABLE_IN_ALL
void        cp_message_take_c_message  (CpMessage     *message,
                                        gpointer       c_message);
CP_AVAILABLE_IN_ALL
CpMessage  *cp_message_new_take        (GType          message_type,
                                        gpointer       c_message);

G_END_DECLS
