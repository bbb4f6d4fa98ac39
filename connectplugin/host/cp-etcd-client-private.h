/* cp-etcd-client-private.h: etcd's v3 API over its HTTP/JSON gateway
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The client: a SoupSession and the endpoints (`http://host:port`), tried
 * in turn; a transport failure moves the next call to the next endpoint.
 * Requests and answers are JSON objects as etcd's gRPC gateway (`/v3/…`)
 * speaks them: int64 fields as decimal strings, keys and values base64.
 *
 * Errors: the gateway's own error body (`{"error","message","code"}`, code
 * a gRPC code, numerically the same as CpErrorCode) becomes that code in
 * CP_ERROR; a transport failure or an HTTP status other than 200 without
 * such a body is `unavailable`; an answer that is not a JSON object, or
 * lacks what the call needs, is `internal`. */
#define CP_TYPE_ETCD_CLIENT (cp_etcd_client_get_type ())
G_DECLARE_FINAL_TYPE (CpEtcdClient, cp_etcd_client, CP, ETCD_CLIENT, GObject)

CpEtcdClient *cp_etcd_client_new           (const char * const  *endpoints);

/* POSTs @request (the method's JSON object, e.g. `/v3/kv/range`) and
 * answers the response object (transfer full). */
void          cp_etcd_client_call_async    (CpEtcdClient        *self,
                                            const char          *path,
                                            JsonObject          *request,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
JsonObject   *cp_etcd_client_call_finish   (CpEtcdClient        *self,
                                            GAsyncResult        *result,
                                            GError             **error);

/* Opens `/v3/watch` for the keys in [@key, @range_end) from
 * @start_revision (0: from now) and answers the response body: one JSON
 * object a line, each to go through cp_etcd_parse_watch_line (). */
void          cp_etcd_client_watch_async   (CpEtcdClient        *self,
                                            const char          *key,
                                            const char          *range_end,
                                            gint64               start_revision,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
GInputStream *cp_etcd_client_watch_finish  (CpEtcdClient        *self,
                                            GAsyncResult        *result,
                                            GError             **error);

/* ---- Request helpers ---- */

/* The end of the range of keys starting with @prefix (etcd's "prefix + 1"). */
char       *cp_etcd_prefix_end        (const char  *prefix);
/* Sets @member of @object to @value in base64. */
void        cp_etcd_set_bytes         (JsonObject  *object,
                                       const char  *member,
                                       const char  *value,
                                       gsize        len);

/* ---- Parsers of what the gateway sends (network bytes; fuzzed) ---- */

typedef struct {
  char   *key;          /* decoded; may hold any bytes but NUL ends it */
  GBytes *value;
  gint64  mod_revision;
  gboolean deleted;     /* a DELETE event */
} CpEtcdKv;

void        cp_etcd_kv_free           (CpEtcdKv    *kv);

/* One response body: a JSON object, or the gateway's error as a GError. */
JsonObject *cp_etcd_parse_response    (const char  *data,
                                       gsize        len,
                                       GError     **error);
/* An int64 member (decimal string or number); absent is 0. */
gboolean    cp_etcd_get_int64         (JsonObject  *object,
                                       const char  *member,
                                       gint64      *out,
                                       GError     **error);
/* A `/v3/kv/range` response: its header's revision and its kvs
 * (element-type CpEtcdKv, appended to @kvs). */
gboolean    cp_etcd_parse_range       (JsonObject  *response,
                                       gint64      *revision,
                                       GPtrArray   *kvs,
                                       GError     **error);

typedef struct {
  gint64     revision;          /* the header's */
  gint64     compact_revision;  /* > 0: the start revision was compacted */
  gboolean   created;
  gboolean   canceled;
  GPtrArray *events;            /* CpEtcdKv */
} CpEtcdWatchResult;

void        cp_etcd_watch_result_clear (CpEtcdWatchResult *result);
/* One line of the watch stream (`{"result":{…}}`, or `{"error":{…}}`). */
gboolean    cp_etcd_parse_watch_line  (const char        *line,
                                       gsize              len,
                                       CpEtcdWatchResult *result,
                                       GError           **error);

/* A registered plugin, the value stored under `PREFIX NAME/ID`:
 * `{"name":…,"url":…,"version":…,"metadata":{"k":"v",…}}`. */
typedef struct {
  char       *name;
  char       *url;
  char       *version;    /* nullable */
  GHashTable *metadata;   /* char* → char*, never NULL */
} CpEtcdEntry;

void         cp_etcd_entry_free       (CpEtcdEntry *entry);
CpEtcdEntry *cp_etcd_entry_parse      (const char  *data,
                                       gsize        len,
                                       GError     **error);
char        *cp_etcd_entry_to_json    (const char  *name,
                                       const char  *url,
                                       const char  *version,
                                       GHashTable  *metadata);

/* A provider of the broker's service registry, the value stored under
 * `PREFIX services/TYPE/REG_ID` by CpEtcdRegistry:
 * `{"registration_id":…,"service_type":…,"version":…,"provider_id":…,
 *   "host_id":…,"router_url":…,"health":"healthy"|"degraded"|"unhealthy",
 *   "metadata":{"k":"v",…}}`. The parser checks every member as the
 * registry's own validation does (type, semver version, metadata limits),
 * the ids (1 to 128 bytes, no `/`) and the router URL (http or https). */
typedef struct {
  char       *registration_id;
  char       *service_type;
  char       *version;
  char       *provider_id;
  char       *host_id;
  char       *router_url;
  int         health;     /* CpHealthState: HEALTHY, DEGRADED or UNHEALTHY */
  GHashTable *metadata;   /* char* → char*, never NULL */
} CpEtcdService;

void           cp_etcd_service_free    (CpEtcdService *service);
CpEtcdService *cp_etcd_service_parse   (const char    *data,
                                        gsize          len,
                                        GError       **error);
char          *cp_etcd_service_to_json (const CpEtcdService *service);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpEtcdService, cp_etcd_service_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpEtcdKv, cp_etcd_kv_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpEtcdEntry, cp_etcd_entry_free)

G_END_DECLS
