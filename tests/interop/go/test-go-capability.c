/* test-go-capability.c: a Go plugin (connect-plugin-go's capability client,
 * as its examples/kv/impl-with-logger does it) requests the secrets
 * capability from our host's CpBroker and reads a secret through the grant
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   test-go-capability CP_GO_CAPABILITY_CLIENT
 *
 * The host runs in this process (CpServer + CpBroker on 127.0.0.1:0, the
 * secrets capability a generated skeleton); the Go client is started per
 * test with --host URL and its one-line-per-step output is checked.
 */
#include <connectplugin.h>
#include <string.h>

#include "secrets.cp.h"

#define GUARD_S 30

static const char *go_client;

typedef struct {
  CpServer *host;
  CpBroker *broker;
  SecretsSecrets *secrets;
  char *url;
} Fixture;

static gboolean
on_get_secret (SecretsSecrets          *skeleton,
               CpInvocation            *invocation,
               SecretsGetSecretRequest *request,
               gpointer                 user_data)
{
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  const char *caller = soup_message_headers_get_one (headers, "X-Plugin-Runtime-ID");
  g_autoptr(SecretsGetSecretResponse) response = secrets_get_secret_response_new ();
  g_autofree char *value = g_strdup_printf ("s3cret-of-%s-for-%s",
                                            secrets_get_secret_request_get_name (request),
                                            caller ? caller : "-");

  secrets_get_secret_response_set_value (response, value);
  secrets_secrets_complete_get_secret (skeleton, invocation, response);
  return TRUE;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->host = cp_server_new ();
  f->broker = cp_broker_new (f->host);
  f->secrets = secrets_secrets_skeleton_new ();
  g_signal_connect (f->secrets, "handle-get-secret", G_CALLBACK (on_get_secret), NULL);
  cp_broker_add_capability (f->broker, "secrets", "1.0.0", CP_SKELETON (f->secrets));
  f->url = cp_server_listen (f->host, "127.0.0.1:0", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  cp_server_close (f->host);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->broker);
  g_clear_object (&f->host);
  g_clear_object (&f->secrets);
  g_free (f->url);
}

typedef struct {
  gboolean done;
  char *out;
  int status;
} Run;

static void
on_communicated (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->out, NULL, &error);
  g_assert_no_error (error);
  run->status = g_subprocess_get_exit_status (G_SUBPROCESS (source));
  run->done = TRUE;
}

/* Runs the Go client with --host and @args (NULL-terminated) while the
 * host serves; returns its stdout, *@status its exit status. */
static char *
run_client (Fixture *f,
            int     *status,
            ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  gint64 end = g_get_monotonic_time () + GUARD_S * G_USEC_PER_SEC;
  Run run = { FALSE, NULL, -1 };
  const char *arg;
  va_list args;

  g_ptr_array_add (argv, (char *) go_client);
  g_ptr_array_add (argv, (char *) "--host");
  g_ptr_array_add (argv, f->url);
  va_start (args, status);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  process = g_subprocess_newv ((const char * const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, on_communicated, &run);
  while (!run.done)
    {
      if (g_get_monotonic_time () > end)  /* hang guard */
        {
          g_subprocess_force_exit (process);
          g_error ("the Go client hangs");
        }
      g_main_context_iteration (NULL, TRUE);
    }
  *status = run.status;
  return run.out;
}

static void
assert_line (const char *out,
             const char *line)
{
  g_autofree char *needle = g_strconcat (line, "\n", NULL);

  if (strstr (out, needle) == NULL)
    g_error ("no line \"%s\" in:\n%s", line, out);
}

/* RequestCapability at the host URL, then GetSecret at the grant. */
static void
test_host_broker (Fixture       *f,
                  gconstpointer  data)
{
  int status;
  g_autofree char *out = run_client (f, &status, NULL);
  g_autofree char *advertised = g_strdup_printf ("advertised secrets 1.0.0 %s/broker", f->url);
  g_autofree char *grant = g_strdup_printf ("%s/capabilities/secrets/", f->url);

  g_assert_cmpint (status, ==, 0);
  assert_line (out, advertised);
  g_assert_nonnull (strstr (out, grant));
  g_assert_nonnull (strstr (out, "secret db-password=s3cret-of-db-password-for-capability-client-"));
}

/* At the advertised endpoint (host + /broker), where connect-plugin-go's
 * own host answers 404. */
static void
test_advertised_broker (Fixture       *f,
                        gconstpointer  data)
{
  int status;
  g_autofree char *out = run_client (f, &status, "--broker", "advertised", NULL);

  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "secret db-password=s3cret-of-db-password-for-capability-client-"));
}

/* Without a runtime identity, as the original example: refused. */
static void
test_anonymous (Fixture       *f,
                gconstpointer  data)
{
  int status;
  g_autofree char *out = run_client (f, &status, "--anonymous", NULL);

  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, "FAIL RequestCapability: unauthenticated"));
}

/* A capability the host does not offer. */
static void
test_unknown_type (Fixture       *f,
                   gconstpointer  data)
{
  int status;
  g_autofree char *out = run_client (f, &status, "--type", "logger", NULL);

  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, "FAIL RequestCapability: not_found: capability \"logger\" not available"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    {
      g_printerr ("usage: %s CP_GO_CAPABILITY_CLIENT\n", argv[0]);
      return 2;
    }
  go_client = argv[1];

#define ADD(path, func) \
  g_test_add ("/interop-go/capability/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("host-broker", test_host_broker);
  ADD ("advertised-broker", test_advertised_broker);
  ADD ("anonymous", test_anonymous);
  ADD ("unknown-type", test_unknown_type);

  return g_test_run ();
}
