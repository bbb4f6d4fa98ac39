/* kv-test.h: the generated kv.v1 classes, as the engine's tests and benches use them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The KV example's proto (examples/kv/kv.proto) through protoc-gen-cp, built
 * over the static engine (kv_test_dep in tests/meson.build), plus the
 * one-line constructors and procedure paths the raw engine tests call by
 * hand: they drive CpRpcServer and CpChannel directly, not through the
 * generated Proxy and Skeleton.
 */
#pragma once

#include "kv.cp.h"
#include "kv.pb-c.h"

/* The constructors below fill a fresh message's protoc-c struct, whose
 * fields are still at their defaults, directly (protobuf-c frees with
 * free(), and g_malloc is malloc): no property notifications in the
 * benchmarks' hot loops, as the hand-written kv-messages.c did. */
static inline void
kv_test_fill_string (char **field, const char *value)
{
  if (value != NULL && *value != '\0')
    *field = g_strdup (value);
}

static inline void
kv_test_fill_bytes (ProtobufCBinaryData *field, GBytes *value)
{
  gsize len = 0;
  const guint8 *data = value != NULL ? g_bytes_get_data (value, &len) : NULL;

  field->data = len > 0 ? g_memdup2 (data, len) : NULL;
  field->len = len;
}

#define KV_PROCEDURE_GET    "/kv.v1.KVService/Get"
#define KV_PROCEDURE_PUT    "/kv.v1.KVService/Put"
#define KV_PROCEDURE_DELETE "/kv.v1.KVService/Delete"
#define KV_PROCEDURE_WATCH  "/kv.v1.KVService/Watch"

static inline KvGetRequest *
kv_test_get_request (const char *key)
{
  KvGetRequest *self = kv_get_request_new ();
  Kv__V1__GetRequest *m = cp_message_get_c_message (CP_MESSAGE (self));

  kv_test_fill_string (&m->key, key);
  return self;
}

static inline KvGetResponse *
kv_test_get_response (GBytes   *value,
                      gboolean  found)
{
  KvGetResponse *self = kv_get_response_new ();
  Kv__V1__GetResponse *m = cp_message_get_c_message (CP_MESSAGE (self));

  kv_test_fill_bytes (&m->value, value);
  m->found = found;
  return self;
}

static inline KvPutRequest *
kv_test_put_request (const char *key,
                     GBytes     *value)
{
  KvPutRequest *self = kv_put_request_new ();
  Kv__V1__PutRequest *m = cp_message_get_c_message (CP_MESSAGE (self));

  kv_test_fill_string (&m->key, key);
  kv_test_fill_bytes (&m->value, value);
  return self;
}

static inline KvDeleteRequest *
kv_test_delete_request (const char *key)
{
  KvDeleteRequest *self = kv_delete_request_new ();
  Kv__V1__DeleteRequest *m = cp_message_get_c_message (CP_MESSAGE (self));

  kv_test_fill_string (&m->key, key);
  return self;
}

static inline KvWatchRequest *
kv_test_watch_request (const char *prefix)
{
  KvWatchRequest *self = kv_watch_request_new ();
  Kv__V1__WatchRequest *m = cp_message_get_c_message (CP_MESSAGE (self));

  kv_test_fill_string (&m->prefix, prefix);
  return self;
}

static inline KvWatchEvent *
kv_test_watch_event (KvEventType  type,
                     const char  *key,
                     GBytes      *value)
{
  KvWatchEvent *self = kv_watch_event_new ();
  Kv__V1__WatchEvent *m = cp_message_get_c_message (CP_MESSAGE (self));

  m->type = (Kv__V1__EventType) type;
  kv_test_fill_string (&m->key, key);
  kv_test_fill_bytes (&m->value, value);
  return self;
}

/* Registers every kv.v1 message class, so they are found by full name. */
static inline void
kv_test_ensure_types (void)
{
  GType types[] = {
    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE, KV_TYPE_PUT_REQUEST,
    KV_TYPE_PUT_RESPONSE, KV_TYPE_DELETE_REQUEST, KV_TYPE_DELETE_RESPONSE,
    KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT,
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_type_class_unref (g_type_class_ref (types[i]));
}
