/* cp-client-private.h: the units of CpClient
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpClient is cut into two files that share its struct:
 * - cp-client.c: the object (properties, dispensing proxies, closing);
 * - cp-client-connect.c: connecting (discovery, handshake, the first
 *   health report; connect_async and connect_sync, reconnects) and
 *   failing.
 * Both read and move one state (CpClient:state).
 */
#pragma once

#include "cp-client.h"
#include "cp-health-monitor.h"
#include "cp-client-metrics-private.h"

G_BEGIN_DECLS

struct _CpClient
{
  GObject parent_instance;

  /* configuration */
  CpDiscovery *discovery;
  char *endpoint;
  GStrv plugins;
  char *cookie_key;
  char *cookie_value;
  int app_version;
  guint handshake_timeout_ms;
  guint health_timeout_ms;
  guint call_timeout_ms;
  guint health_interval_ms;
  gboolean health_check;
  gboolean auto_reconnect;
  gboolean shutdown_on_close;
  char *self_id;
  char *self_version;
  CpCircuitBreaker *circuit_breaker;  /* set on each channel connected with */
  CpRetryPolicy *retry_policy;        /* the same */
  GPtrArray *interceptors;            /* CpClientInterceptor; the same */
  GListStore *plugin_model;           /* CpPluginInfo: the plugins of the connection */
  GPtrArray *dispensed;               /* GWeakRef * of the proxies dispensed: they
                                       * follow the client to each new channel */
  gboolean metrics_enabled;
  char *metrics_label;
  /* Made when metrics are first enabled, then kept (running calls and a
   * server's /metrics hold references); given to each channel connected
   * with while metrics_enabled. */
  CpClientMetrics *metrics;
  GTlsCertificate *tls_certificate;   /* given to each channel connected with */
  GTlsDatabase *tls_database;         /* the same */
  CpHttpVersion http_version;         /* the same */

  /* state */
  GMainContext *context;
  CpClientState state;
  GError *error;
  guint attempt;                /* generation of the current connection attempt */
  GCancellable *attempt_cancellable;
  GPtrArray *connect_waiters;   /* GTask */
  GSource *ready_timeout;
  gulong changed_id;
  /* cp_client_connect_sync() runs: the handshake is a sync call, and the
   * health monitor is left to it */
  gboolean sync_connect;
  /* The attempt under way was started by cp_client_connect_async (): when
   * its last caller cancels, it ends. */
  gboolean attempt_by_caller;
  GCancellable *sync_cancellable;

  char *url;
  CpChannel *channel;
  CpHandshakeResponse *response;
  GPtrArray *infos;             /* CpPluginInfo */
  CpHealthMonitor *monitor;
};

enum {
  PROP_0,
  PROP_DISCOVERY,
  PROP_ENDPOINT,
  PROP_PLUGINS,
  PROP_MAGIC_COOKIE_KEY,
  PROP_MAGIC_COOKIE_VALUE,
  PROP_APP_PROTOCOL_VERSION,
  PROP_HANDSHAKE_TIMEOUT_MS,
  PROP_HEALTH_TIMEOUT_MS,
  PROP_CALL_TIMEOUT_MS,
  PROP_HEALTH_INTERVAL_MS,
  PROP_HEALTH_CHECK,
  PROP_AUTO_RECONNECT,
  PROP_SHUTDOWN_ON_CLOSE,
  PROP_SELF_ID,
  PROP_SELF_VERSION,
  PROP_STATE,
  PROP_URL,
  PROP_CHANNEL,
  PROP_HEALTH_MONITOR,
  PROP_CIRCUIT_BREAKER,
  PROP_RETRY_POLICY,
  PROP_METRICS_ENABLED,
  PROP_METRICS_LABEL,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_DATABASE,
  PROP_HTTP_VERSION,
  N_PROPS
};

/* cp-client.c */
void cp_client_notify                (CpClient      *self,
                                      guint          prop_id);
/* The `plugin` label of the client's metrics, recomputed (the default
 * depends on the plugins asked for and the URL connected to). */
void cp_client_update_metrics_label  (CpClient      *self);

/* cp-client-connect.c */
void cp_client_set_state             (CpClient      *self,
                                      CpClientState  state);
/* Completes the pending connects: with @error, else TRUE. */
void cp_client_complete_waiters      (CpClient      *self,
                                      const GError  *error);
/* Drops the connection (channel, monitor, handshake results). */
void cp_client_teardown              (CpClient      *self);
/* The proxies dispensed, followed to each new channel (cp-client.c). */
void cp_client_track_proxy           (CpClient      *self,
                                      CpProxy       *proxy);
void cp_client_move_proxies          (CpClient      *self);
void cp_client_weak_ref_free         (gpointer       data);
/* The discovery's "changed": reconnects when auto-reconnect is on. */
void cp_client_discovery_changed_cb  (CpDiscovery   *discovery,
                                      gpointer       user_data);

G_END_DECLS

