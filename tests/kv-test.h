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

#define KV_PROCEDURE_GET    "/kv.v1.KVService/Get"
#define KV_PROCEDURE_PUT    "/kv.v1.KVService/Put"
#define KV_PROCEDURE_DELETE "/kv.v1.KVService/Delete"
#define KV_PROCEDURE_WATCH  "/kv.v1.KVService/Watch"

static inline KvGetRequest *
kv_test_get_request (const char *key)
{
  KvGetRequest *self = kv_get_request_new ();

  kv_get_request_set_key (self, key);
  return self;
}

static inline KvGetResponse *
kv_test_get_response (GBytes   *value,
                      gboolean  found)
{
  KvGetResponse *self = kv_get_response_new ();

  kv_get_response_set_value (self, value);
  kv_get_response_set_found (self, found);
  return self;
}

static inline KvPutRequest *
kv_test_put_request (const char *key,
                     GBytes     *value)
{
  KvPutRequest *self = kv_put_request_new ();

  kv_put_request_set_key (self, key);
  kv_put_request_set_value (self, value);
  return self;
}

static inline KvDeleteRequest *
kv_test_delete_request (const char *key)
{
  KvDeleteRequest *self = kv_delete_request_new ();

  kv_delete_request_set_key (self, key);
  return self;
}

static inline KvWatchRequest *
kv_test_watch_request (const char *prefix)
{
  KvWatchRequest *self = kv_watch_request_new ();

  kv_watch_request_set_prefix (self, prefix);
  return self;
}

static inline KvWatchEvent *
kv_test_watch_event (KvEventType  type,
                     const char  *key,
                     GBytes      *value)
{
  KvWatchEvent *self = kv_watch_event_new ();

  kv_watch_event_set_type_ (self, type);
  kv_watch_event_set_key (self, key);
  kv_watch_event_set_value (self, value);
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
