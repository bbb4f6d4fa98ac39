/* cp-json-private.h: what the proto3 JSON reader and writer share
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

/* google.protobuf.{Double,Float,Int64,UInt64,Int32,UInt32,Bool,String,Bytes}Value:
 * JSON writes them as their one field's bare value. */
gboolean cp_json_is_wrapper       (const ProtobufCMessageDescriptor *descriptor);

/* Does @descriptor have the full protobuf name @name? */
gboolean cp_json_is_named         (const ProtobufCMessageDescriptor *descriptor,
                                   const char                       *name);

/* Well-known types whose JSON form is not an object of their fields
 * (inside an Any they go in a "value" member). */
gboolean cp_json_has_special_form (const ProtobufCMessageDescriptor *descriptor);

/* The descriptor of the message class registered for an Any's type URL;
 * NULL when none is. */
const ProtobufCMessageDescriptor *
         cp_json_any_descriptor   (const char                       *type_url);

/* protobuf_c_message_descriptor_get_field_by_name(): the field with proto
 * name @name, or NULL. */
const ProtobufCFieldDescriptor *
         cp_json_field_named      (const ProtobufCMessageDescriptor *descriptor,
                                   const char                       *name);

G_END_DECLS
