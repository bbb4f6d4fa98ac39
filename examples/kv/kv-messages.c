/* kv-messages.c: hand-written CpMessage subclasses for kv.v1
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "kv-messages.h"
#include "kv.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* protobuf-c owns struct memory through malloc/free (g_malloc is malloc). */
static void
set_string (char **field, const char *value)
{
  if (*field != NULL && *field != protobuf_c_empty_string)
    free (*field);
  *field = (value != NULL && *value != '\0') ? g_strdup (value) : (char *) protobuf_c_empty_string;
}

static void
set_bytes (ProtobufCBinaryData *field, GBytes *value)
{
  gsize len = 0;
  const guint8 *data = value ? g_bytes_get_data (value, &len) : NULL;

  free (field->data);
  field->data = len ? g_memdup2 (data, len) : NULL;
  field->len = len;
}

static GBytes *
get_bytes (const ProtobufCBinaryData *field)
{
  return g_bytes_new (field->data, field->len);
}

#define KV_DEFINE_MESSAGE(TypeName, type_name, CStruct, c_descriptor)        \
  struct _##TypeName { CpMessage parent_instance; };                         \
  G_DEFINE_FINAL_TYPE (TypeName, type_name, CP_TYPE_MESSAGE)                 \
  static void type_name##_class_init (TypeName##Class *klass)                \
  {                                                                          \
    cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &c_descriptor); \
  }                                                                          \
  static void type_name##_init (TypeName *self) { }                          \
  static inline CStruct *type_name##_c (gpointer self)                       \
  {                                                                          \
    return cp_message_get_c_message (CP_MESSAGE (self));                     \
  }

KV_DEFINE_MESSAGE (KvGetRequest, kv_get_request, Kv__V1__GetRequest, kv__v1__get_request__descriptor)
KV_DEFINE_MESSAGE (KvGetResponse, kv_get_response, Kv__V1__GetResponse, kv__v1__get_response__descriptor)
KV_DEFINE_MESSAGE (KvPutRequest, kv_put_request, Kv__V1__PutRequest, kv__v1__put_request__descriptor)
KV_DEFINE_MESSAGE (KvPutResponse, kv_put_response, Kv__V1__PutResponse, kv__v1__put_response__descriptor)
KV_DEFINE_MESSAGE (KvDeleteRequest, kv_delete_request, Kv__V1__DeleteRequest, kv__v1__delete_request__descriptor)
KV_DEFINE_MESSAGE (KvDeleteResponse, kv_delete_response, Kv__V1__DeleteResponse, kv__v1__delete_response__descriptor)
KV_DEFINE_MESSAGE (KvWatchRequest, kv_watch_request, Kv__V1__WatchRequest, kv__v1__watch_request__descriptor)
KV_DEFINE_MESSAGE (KvWatchEvent, kv_watch_event, Kv__V1__WatchEvent, kv__v1__watch_event__descriptor)

KvGetRequest *
kv_get_request_new (const char *key)
{
  KvGetRequest *self = g_object_new (KV_TYPE_GET_REQUEST, NULL);
  set_string (&kv_get_request_c (self)->key, key);
  return self;
}

const char *
kv_get_request_get_key (KvGetRequest *self)
{
  return kv_get_request_c (self)->key;
}

KvGetResponse *
kv_get_response_new (GBytes *value, gboolean found)
{
  KvGetResponse *self = g_object_new (KV_TYPE_GET_RESPONSE, NULL);
  set_bytes (&kv_get_response_c (self)->value, value);
  kv_get_response_c (self)->found = found;
  return self;
}

GBytes *
kv_get_response_get_value (KvGetResponse *self)
{
  return get_bytes (&kv_get_response_c (self)->value);
}

gboolean
kv_get_response_get_found (KvGetResponse *self)
{
  return kv_get_response_c (self)->found;
}

KvPutRequest *
kv_put_request_new (const char *key, GBytes *value)
{
  KvPutRequest *self = g_object_new (KV_TYPE_PUT_REQUEST, NULL);
  set_string (&kv_put_request_c (self)->key, key);
  set_bytes (&kv_put_request_c (self)->value, value);
  return self;
}

const char *
kv_put_request_get_key (KvPutRequest *self)
{
  return kv_put_request_c (self)->key;
}

GBytes *
kv_put_request_get_value (KvPutRequest *self)
{
  return get_bytes (&kv_put_request_c (self)->value);
}

KvPutResponse *
kv_put_response_new (void)
{
  return g_object_new (KV_TYPE_PUT_RESPONSE, NULL);
}

KvDeleteRequest *
kv_delete_request_new (const char *key)
{
  KvDeleteRequest *self = g_object_new (KV_TYPE_DELETE_REQUEST, NULL);
  set_string (&kv_delete_request_c (self)->key, key);
  return self;
}

const char *
kv_delete_request_get_key (KvDeleteRequest *self)
{
  return kv_delete_request_c (self)->key;
}

KvDeleteResponse *
kv_delete_response_new (gboolean found)
{
  KvDeleteResponse *self = g_object_new (KV_TYPE_DELETE_RESPONSE, NULL);
  kv_delete_response_c (self)->found = found;
  return self;
}

gboolean
kv_delete_response_get_found (KvDeleteResponse *self)
{
  return kv_delete_response_c (self)->found;
}

KvWatchRequest *
kv_watch_request_new (const char *prefix)
{
  KvWatchRequest *self = g_object_new (KV_TYPE_WATCH_REQUEST, NULL);
  set_string (&kv_watch_request_c (self)->prefix, prefix);
  return self;
}

const char *
kv_watch_request_get_prefix (KvWatchRequest *self)
{
  return kv_watch_request_c (self)->prefix;
}

KvWatchEvent *
kv_watch_event_new (int type, const char *key, GBytes *value)
{
  KvWatchEvent *self = g_object_new (KV_TYPE_WATCH_EVENT, NULL);
  Kv__V1__WatchEvent *c = kv_watch_event_c (self);
  c->type = (Kv__V1__EventType) type;
  set_string (&c->key, key);
  set_bytes (&c->value, value);
  return self;
}

int
kv_watch_event_get_event_type (KvWatchEvent *self)
{
  return kv_watch_event_c (self)->type;
}

const char *
kv_watch_event_get_key (KvWatchEvent *self)
{
  return kv_watch_event_c (self)->key;
}

GBytes *
kv_watch_event_get_value (KvWatchEvent *self)
{
  return get_bytes (&kv_watch_event_c (self)->value);
}

void
kv_messages_ensure_types (void)
{
  GType types[] = {
    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE, KV_TYPE_PUT_REQUEST,
    KV_TYPE_PUT_RESPONSE, KV_TYPE_DELETE_REQUEST, KV_TYPE_DELETE_RESPONSE,
    KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT,
  };
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_type_class_unref (g_type_class_ref (types[i]));
}
