/* cp-well-known.h: built-in message classes for protobuf well-known types
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-message.h"

G_BEGIN_DECLS

#define CP_TYPE_EMPTY (cp_empty_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpEmpty, cp_empty, CP, EMPTY, CpMessage)

CP_AVAILABLE_IN_ALL
CpEmpty       *cp_empty_new                (void);

#define CP_TYPE_STRING_VALUE (cp_string_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpStringValue, cp_string_value, CP, STRING_VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpStringValue *cp_string_value_new         (const char    *value);
CP_AVAILABLE_IN_ALL
const char    *cp_string_value_get_value   (CpStringValue *self);
CP_AVAILABLE_IN_ALL
void           cp_string_value_set_value   (CpStringValue *self,
                                            const char    *value);

#define CP_TYPE_BYTES_VALUE (cp_bytes_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpBytesValue, cp_bytes_value, CP, BYTES_VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpBytesValue  *cp_bytes_value_new          (GBytes        *value);
CP_AVAILABLE_IN_ALL
GBytes        *cp_bytes_value_get_value    (CpBytesValue  *self);
CP_AVAILABLE_IN_ALL
void           cp_bytes_value_set_value    (CpBytesValue  *self,
                                            GBytes        *value);

#define CP_TYPE_INT32_VALUE (cp_int32_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpInt32Value, cp_int32_value, CP, INT32_VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpInt32Value  *cp_int32_value_new          (gint32         value);
CP_AVAILABLE_IN_ALL
gint32         cp_int32_value_get_value    (CpInt32Value  *self);
CP_AVAILABLE_IN_ALL
void           cp_int32_value_set_value    (CpInt32Value  *self,
                                            gint32         value);

#define CP_TYPE_INT64_VALUE (cp_int64_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpInt64Value, cp_int64_value, CP, INT64_VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpInt64Value  *cp_int64_value_new          (gint64         value);
CP_AVAILABLE_IN_ALL
gint64         cp_int64_value_get_value    (CpInt64Value  *self);
CP_AVAILABLE_IN_ALL
void           cp_int64_value_set_value    (CpInt64Value  *self,
                                            gint64         value);

#define CP_TYPE_BOOL_VALUE (cp_bool_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpBoolValue, cp_bool_value, CP, BOOL_VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpBoolValue   *cp_bool_value_new           (gboolean       value);
CP_AVAILABLE_IN_ALL
gboolean       cp_bool_value_get_value     (CpBoolValue   *self);
CP_AVAILABLE_IN_ALL
void           cp_bool_value_set_value     (CpBoolValue   *self,
                                            gboolean       value);

#define CP_TYPE_ANY (cp_any_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpAny, cp_any, CP, ANY, CpMessage)

CP_AVAILABLE_IN_ALL
CpAny         *cp_any_new                  (void);
CP_AVAILABLE_IN_ALL
CpAny         *cp_any_pack                 (CpMessage     *message,
                                            GError       **error);
CP_AVAILABLE_IN_ALL
CpMessage     *cp_any_unpack               (CpAny         *self,
                                            GError       **error);
CP_AVAILABLE_IN_ALL
const char    *cp_any_get_type_url         (CpAny         *self);
CP_AVAILABLE_IN_ALL
const char    *cp_any_get_type_name        (CpAny         *self);
CP_AVAILABLE_IN_ALL
GBytes        *cp_any_get_value            (CpAny         *self);
CP_AVAILABLE_IN_ALL
void           cp_any_set                  (CpAny         *self,
                                            const char    *type_url,
                                            GBytes        *value);

#define CP_TYPE_STRUCT (cp_struct_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpStruct, cp_struct, CP, STRUCT, CpMessage)

CP_AVAILABLE_IN_ALL
CpStruct      *cp_struct_new               (void);

#define CP_TYPE_VALUE (cp_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpValue, cp_value, CP, VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpValue       *cp_value_new                (void);

#define CP_TYPE_LIST_VALUE (cp_list_value_get_type ())
CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpListValue, cp_list_value, CP, LIST_VALUE, CpMessage)

CP_AVAILABLE_IN_ALL
CpListValue   *cp_list_value_new           (void);

G_END_DECLS
