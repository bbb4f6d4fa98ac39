/* kv-messages.h: hand-written CpMessage subclasses for kv.v1
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Stand-ins for what protoc-gen-cp will generate: one GObject class per proto
 * message over protoc-c's struct, with typed accessors.
 */
#pragma once

#include <connectplugin.h>

G_BEGIN_DECLS

#define KV_EVENT_TYPE_UNSPECIFIED 0
#define KV_EVENT_TYPE_PUT         1
#define KV_EVENT_TYPE_DELETE      2

#define KV_PROCEDURE_GET    "/kv.v1.KVService/Get"
#define KV_PROCEDURE_PUT    "/kv.v1.KVService/Put"
#define KV_PROCEDURE_DELETE "/kv.v1.KVService/Delete"
#define KV_PROCEDURE_WATCH  "/kv.v1.KVService/Watch"

#define KV_TYPE_GET_REQUEST (kv_get_request_get_type ())
G_DECLARE_FINAL_TYPE (KvGetRequest, kv_get_request, KV, GET_REQUEST, CpMessage)
KvGetRequest    *kv_get_request_new        (const char *key);
const char      *kv_get_request_get_key    (KvGetRequest *self);

#define KV_TYPE_GET_RESPONSE (kv_get_response_get_type ())
G_DECLARE_FINAL_TYPE (KvGetResponse, kv_get_response, KV, GET_RESPONSE, CpMessage)
KvGetResponse   *kv_get_response_new       (GBytes *value, gboolean found);
GBytes          *kv_get_response_get_value (KvGetResponse *self);
gboolean         kv_get_response_get_found (KvGetResponse *self);

#define KV_TYPE_PUT_REQUEST (kv_put_request_get_type ())
G_DECLARE_FINAL_TYPE (KvPutRequest, kv_put_request, KV, PUT_REQUEST, CpMessage)
KvPutRequest    *kv_put_request_new        (const char *key, GBytes *value);
const char      *kv_put_request_get_key    (KvPutRequest *self);
GBytes          *kv_put_request_get_value  (KvPutRequest *self);

#define KV_TYPE_PUT_RESPONSE (kv_put_response_get_type ())
G_DECLARE_FINAL_TYPE (KvPutResponse, kv_put_response, KV, PUT_RESPONSE, CpMessage)
KvPutResponse   *kv_put_response_new       (void);

#define KV_TYPE_DELETE_REQUEST (kv_delete_request_get_type ())
G_DECLARE_FINAL_TYPE (KvDeleteRequest, kv_delete_request, KV, DELETE_REQUEST, CpMessage)
KvDeleteRequest *kv_delete_request_new     (const char *key);
const char      *kv_delete_request_get_key (KvDeleteRequest *self);

#define KV_TYPE_DELETE_RESPONSE (kv_delete_response_get_type ())
G_DECLARE_FINAL_TYPE (KvDeleteResponse, kv_delete_response, KV, DELETE_RESPONSE, CpMessage)
KvDeleteResponse *kv_delete_response_new      (gboolean found);
gboolean          kv_delete_response_get_found (KvDeleteResponse *self);

#define KV_TYPE_WATCH_REQUEST (kv_watch_request_get_type ())
G_DECLARE_FINAL_TYPE (KvWatchRequest, kv_watch_request, KV, WATCH_REQUEST, CpMessage)
KvWatchRequest  *kv_watch_request_new        (const char *prefix);
const char      *kv_watch_request_get_prefix (KvWatchRequest *self);

#define KV_TYPE_WATCH_EVENT (kv_watch_event_get_type ())
G_DECLARE_FINAL_TYPE (KvWatchEvent, kv_watch_event, KV, WATCH_EVENT, CpMessage)
KvWatchEvent    *kv_watch_event_new        (int type, const char *key, GBytes *value);
int              kv_watch_event_get_event_type (KvWatchEvent *self);
const char      *kv_watch_event_get_key    (KvWatchEvent *self);
GBytes          *kv_watch_event_get_value  (KvWatchEvent *self);

/* Registers every kv.v1 message type (so they are found by full name). */
void             kv_messages_ensure_types  (void);

G_END_DECLS
