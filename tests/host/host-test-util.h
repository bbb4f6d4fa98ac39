/* host-test-util.h: shared helpers of the host-side tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <connectplugin.h>
#include "cp-plugin-protos.h"
#include "cp-plugin-constants.h"
#include "cp-plugin.h"
#include "cp-server.h"
#include "cp-discovery.h"
#include "cp-static-discovery.h"
#include "cp-process-discovery.h"
#include "cp-in-process-discovery.h"
#include "cp-health-monitor.h"
#include "cp-client.h"
#include "cp-host-enum-types.h"
#include "hosttest.cp.h"

G_BEGIN_DECLS

/* A CpServer with two plugins: "echo" (version 1.2.3, hosttest.v1.EchoService:
 * Say echoes, Count sends 1..up_to then ends; up_to < 0 sends 1 and stays
 * open) and "other" (hosttest.v1.OtherService). Not started. */
CpServer   *host_test_echo_server_new   (void);

/* Iterates the thread-default context until *flag (guard: fails the test
 * after 20 s instead of hanging). */
void        host_test_wait_flag         (gboolean *flag);
#define HOST_TEST_WAIT_UNTIL(cond) \
  G_STMT_START { \
    gint64 _end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC; \
    while (!(cond)) \
      { \
        if (g_get_monotonic_time () > _end) \
          g_error ("timed out waiting for %s", #cond); \
        g_main_context_iteration (NULL, TRUE); \
      } \
  } G_STMT_END

/* Wakes the main loop every 50 ms (so HOST_TEST_WAIT_UNTIL re-checks
 * conditions that change without a source firing). */
guint       host_test_add_ticker        (void);

/* Log records forwarded from plugins (field CP_PLUGIN), as
 * "NAME|STREAM|MESSAGE" strings. Install before anything logs. */
void        host_test_capture_plugin_logs (void);
gboolean    host_test_plugin_log_has    (const char *name,
                                         const char *stream,
                                         const char *substring);
void        host_test_plugin_logs_clear (void);

/* A hand-made server (CpRpcServer) for cases CpServer does not produce. */
typedef struct {
  CpRpcServer    *rpc;
  int             core_version;     /* answered in the handshake */
  int             app_version;
  const char     *plugin_name;      /* answered plugin, or NULL */
  gboolean        with_watch;       /* register HealthService.Watch */
  gboolean        with_check;       /* register HealthService.Check */
  CpServingStatus status;
  guint           checks;           /* Check calls seen */
  GPtrArray      *watchers;         /* CpInvocation of open Watch calls */
} FakeServer;

FakeServer *fake_server_new             (void);
/* Registers the methods chosen by the fields; call once. */
void        fake_server_start           (FakeServer      *fake);
void        fake_server_set_status      (FakeServer      *fake,
                                         CpServingStatus  status);
void        fake_server_free            (FakeServer      *fake);

G_END_DECLS
