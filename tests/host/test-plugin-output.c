/* test-plugin-output.c: a launched plugin's output in the host's log
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The parser of GLib's default log writer format
 * (cp_process_parse_glib_line ()), and CpProcessDiscovery forwarding what
 * fake-plugin prints: plain lines at output-log-level, GLib's records at
 * their own level, without double prefixes, never fatal to the host.
 */
#include <string.h>

#include "host-test-util.h"
#include "cp-process-discovery-private.h"

/* ---- the parser ---- */

typedef struct {
  const char     *line;
  GLogLevelFlags  level;        /* 0: a plain line */
  const char     *domain;
  const char     *text;         /* NULL: the whole line */
} ParseCase;

static const ParseCase parse_cases[] = {
  /* What GLib 2.74's g_log_writer_format_fields () writes. */
  { "** Message: 12:34:56.789: text", G_LOG_LEVEL_MESSAGE, NULL, "text" },
  { "Domain-Message: 12:34:56.789: text", G_LOG_LEVEL_MESSAGE, "Domain", "text" },
  { "(process:1234): Domain-WARNING **: 12:34:56.789: text", G_LOG_LEVEL_WARNING, "Domain", "text" },
  { "Domain-WARNING **: 12:34:56.789: text", G_LOG_LEVEL_WARNING, "Domain", "text" },
  { "** (prgname:1234): WARNING **: 12:34:56.789: text", G_LOG_LEVEL_WARNING, NULL, "text" },
  { "** (prgname:1234): CRITICAL **: 12:34:56.789: text", G_LOG_LEVEL_CRITICAL, NULL, "text" },
  { "(prgname:1234): GLib-GObject-CRITICAL **: 00:00:00.000: g_object_ref: assertion 'G_IS_OBJECT (object)' failed",
    G_LOG_LEVEL_CRITICAL, "GLib-GObject", "g_object_ref: assertion 'G_IS_OBJECT (object)' failed" },
  { "** (prgname:1234): ERROR **: 23:59:59.999: boom", G_LOG_LEVEL_ERROR, NULL, "boom" },
  { "(p:1): Domain-ERROR **: 23:59:59.999: boom", G_LOG_LEVEL_ERROR, "Domain", "boom" },
  { "Domain-DEBUG: 12:34:56.789: text", G_LOG_LEVEL_DEBUG, "Domain", "text" },
  { "(fake-plugin:42): Domain-DEBUG: 12:34:56.789: text", G_LOG_LEVEL_DEBUG, "Domain", "text" },
  { "** (fake-plugin:42): DEBUG: 12:34:56.789: text", G_LOG_LEVEL_DEBUG, NULL, "text" },
  { "** INFO: 12:34:56.789: text", G_LOG_LEVEL_INFO, NULL, "text" },
  { "Gio-INFO: 12:34:56.789: text", G_LOG_LEVEL_INFO, "Gio", "text" },
  { "(a b:c:5): My-Dom-WARNING (recursed) **: 01:02:03.004: again", G_LOG_LEVEL_WARNING, "My-Dom", "again" },
  { "** Message: 12:34:56.789: ", G_LOG_LEVEL_MESSAGE, NULL, "" },
  { "** Message: 12:34:56.789: a: b: c", G_LOG_LEVEL_MESSAGE, NULL, "a: b: c" },
  /* Only the first prefix is GLib's. */
  { "(x:1): D-WARNING **: 12:34:56.789: (y:2): E-DEBUG: 12:34:56.789: nested",
    G_LOG_LEVEL_WARNING, "D", "(y:2): E-DEBUG: 12:34:56.789: nested" },
  /* A domain that looks like a process prefix. */
  { "(weird:1)-Message: 12:34:56.789: t", G_LOG_LEVEL_MESSAGE, "(weird:1)", "t" },
  { "** Message: 12:34:56.789: \xff\xfe", G_LOG_LEVEL_MESSAGE, NULL, "\xff\xfe" },

  /* Anything else is plain. */
  { "", 0, NULL, NULL },
  { "plain text", 0, NULL, NULL },
  { "fake-plugin: starting", 0, NULL, NULL },
  { "**", 0, NULL, NULL },
  { "** ", 0, NULL, NULL },
  { "** Message: no time stamp", 0, NULL, NULL },
  { "** Message: 12:34:56: short time stamp", 0, NULL, NULL },
  { "** Message: 12:34:56.78: short milliseconds", 0, NULL, NULL },
  { "** Message: 12:34:56.789 no colon", 0, NULL, NULL },
  { "** Message: 1a:34:56.789: not digits", 0, NULL, NULL },
  { "Domain-WARNING: 12:34:56.789: no stars after an alert level", 0, NULL, NULL },
  { "** WARNING: 12:34:56.789: no stars after an alert level", 0, NULL, NULL },
  { "** Message **: 12:34:56.789: stars after a quiet level", 0, NULL, NULL },
  { "** Domain-Message: 12:34:56.789: a domain after \"** \"", 0, NULL, NULL },
  { "Message: 12:34:56.789: neither \"** \" nor a domain", 0, NULL, NULL },
  { "-Message: 12:34:56.789: an empty domain", 0, NULL, NULL },
  { "Domain-NOTICE: 12:34:56.789: an unknown level", 0, NULL, NULL },
  { "Domain-LOG-0x100: 12:34:56.789: a user level", 0, NULL, NULL },
  { "Domain-message: 12:34:56.789: the wrong case", 0, NULL, NULL },
  { "(process:): Domain-WARNING **: 12:34:56.789: no pid", 0, NULL, NULL },
  { "(:12): Domain-WARNING **: 12:34:56.789: no program name", 0, NULL, NULL },
  { " ** Message: 12:34:56.789: indented", 0, NULL, NULL },
  { "\xff\xfe\xfd garbage \x80", 0, NULL, NULL },
  { "\xc3\x28 ** Message: 12:34:56.789: after invalid UTF-8", 0, NULL, NULL },
};

static void
test_parse (gconstpointer data)
{
  const ParseCase *c = data;
  g_autofree char *domain = NULL;
  const char *text = NULL;
  GLogLevelFlags level = cp_process_parse_glib_line (c->line, &domain, &text);

  g_assert_cmphex (level, ==, c->level);
  g_assert_cmpstr (domain, ==, c->domain);
  if (c->text == NULL)
    g_assert_true (text == c->line);
  else
    {
      g_assert_cmpstr (text, ==, c->text);
      /* Inside the line, at its end. */
      g_assert_true (text >= c->line && text + strlen (text) == c->line + strlen (c->line));
    }
}

/* A 64 KiB line (the longest the host forwards whole), plain or not. */
static void
test_parse_long (void)
{
  g_autoptr(GString) line = g_string_new (NULL);
  g_autofree char *domain = NULL;
  const char *text = NULL;

  for (gsize i = 0; i < 64 * 1024; i++)
    g_string_append_c (line, "a: -*(0"[i % 7]);
  g_assert_cmphex (cp_process_parse_glib_line (line->str, &domain, &text), ==, 0);
  g_assert_null (domain);
  g_assert_true (text == line->str);

  g_string_prepend (line, "(process:1): ");
  g_assert_cmphex (cp_process_parse_glib_line (line->str, &domain, &text), ==, 0);

  /* A long domain and message still parse. */
  g_string_truncate (line, 0);
  for (gsize i = 0; i < 32 * 1024; i++)
    g_string_append_c (line, 'd');
  g_string_append (line, "-Message: 12:34:56.789: ");
  for (gsize i = 0; i < 32 * 1024; i++)
    g_string_append_c (line, 't');
  g_assert_cmphex (cp_process_parse_glib_line (line->str, &domain, &text), ==, G_LOG_LEVEL_MESSAGE);
  g_assert_cmpuint (strlen (domain), ==, 32 * 1024);
  g_assert_cmpuint (strlen (text), ==, 32 * 1024);
}

/* ---- the property ---- */

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              guint      *count)
{
  (*count)++;
}

static void
test_property (void)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, "serve", NULL };
  g_autoptr(CpProcessDiscovery) discovery = cp_process_discovery_new (argv);
  guint notified = 0, value = 0;

  g_assert_cmphex (cp_process_discovery_get_output_log_level (discovery), ==, G_LOG_LEVEL_DEBUG);
  g_signal_connect (discovery, "notify::output-log-level", G_CALLBACK (count_notify), &notified);

  cp_process_discovery_set_output_log_level (discovery, G_LOG_LEVEL_WARNING);
  g_assert_cmphex (cp_process_discovery_get_output_log_level (discovery), ==, G_LOG_LEVEL_WARNING);
  g_assert_cmpuint (notified, ==, 1);
  cp_process_discovery_set_output_log_level (discovery, G_LOG_LEVEL_WARNING);
  g_assert_cmpuint (notified, ==, 1);

  g_object_set (discovery, "output-log-level", (guint) G_LOG_LEVEL_INFO, NULL);
  g_object_get (discovery, "output-log-level", &value, NULL);
  g_assert_cmphex (value, ==, G_LOG_LEVEL_INFO);
  g_assert_cmpuint (notified, ==, 2);

  /* Only the four levels: no ERROR (it would abort), no CRITICAL, no
   * combinations. */
  g_test_expect_message ("ConnectPlugin", G_LOG_LEVEL_CRITICAL, "*level == G_LOG_LEVEL_DEBUG*");
  cp_process_discovery_set_output_log_level (discovery, G_LOG_LEVEL_ERROR);
  g_test_assert_expected_messages ();
  g_test_expect_message ("ConnectPlugin", G_LOG_LEVEL_CRITICAL, "*level == G_LOG_LEVEL_DEBUG*");
  g_object_set (discovery, "output-log-level", (guint) (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE), NULL);
  g_test_assert_expected_messages ();
  g_assert_cmphex (cp_process_discovery_get_output_log_level (discovery), ==, G_LOG_LEVEL_INFO);
  g_assert_cmpuint (notified, ==, 2);
}

/* ---- forwarding, end to end ---- */

typedef struct {
  GLogLevelFlags level;
  char *stream;
  char *message;
  char *domain;                 /* CP_PLUGIN_DOMAIN, or NULL */
} Record;

static GPtrArray *records;      /* Record*, of the plugin "fake-plugin" */

static void
record_free (gpointer data)
{
  Record *r = data;

  g_free (r->stream);
  g_free (r->message);
  g_free (r->domain);
  g_free (r);
}

/* The host's records of the plugin are kept, and those of WARNING and
 * CRITICAL also go to GLib's default writer: it would abort this program
 * (GTest makes warnings and criticals fatal) if the host let it. */
static GLogWriterOutput
writer (GLogLevelFlags   log_level,
        const GLogField *fields,
        gsize            n_fields,
        gpointer         user_data)
{
  const char *plugin = NULL, *stream = NULL, *message = NULL, *domain = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "CP_PLUGIN"))
        plugin = fields[i].value;
      else if (g_str_equal (fields[i].key, "CP_PLUGIN_STREAM"))
        stream = fields[i].value;
      else if (g_str_equal (fields[i].key, "CP_PLUGIN_DOMAIN"))
        domain = fields[i].value;
      else if (g_str_equal (fields[i].key, "MESSAGE"))
        message = fields[i].value;
    }
  if (plugin == NULL || g_strcmp0 (stream, "event") == 0)
    return g_log_writer_default (log_level, fields, n_fields, user_data);

  {
    Record *r = g_new0 (Record, 1);

    r->level = log_level & G_LOG_LEVEL_MASK;
    r->stream = g_strdup (stream);
    r->message = g_strdup (message);
    r->domain = g_strdup (domain);
    g_ptr_array_add (records, r);
  }
  if (log_level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL))
    return g_log_writer_default (log_level, fields, n_fields, user_data);
  return G_LOG_WRITER_HANDLED;
}

static const Record *
find_record (const char *message)
{
  for (guint i = 0; i < records->len; i++)
    {
      const Record *r = g_ptr_array_index (records, i);

      if (g_strcmp0 (r->message, message) == 0)
        return r;
    }
  return NULL;
}

static void
assert_record (const char     *message,
               GLogLevelFlags  level,
               const char     *stream,
               const char     *domain)
{
  const Record *r;

  HOST_TEST_WAIT_UNTIL (find_record (message) != NULL);
  r = find_record (message);
  g_assert_cmphex (r->level, ==, level);
  g_assert_cmpstr (r->stream, ==, stream);
  g_assert_cmpstr (r->domain, ==, domain);
}

static void
started_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_process_discovery_start_finish (CP_PROCESS_DISCOVERY (source),
                                                            result, &error);

  g_assert_no_error (error);
  g_assert_nonnull (url);
  *(gboolean *) user_data = TRUE;
}

static void
stopped_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_process_discovery_stop_finish (CP_PROCESS_DISCOVERY (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* Launches "fake-plugin glib-logs" (named fake-plugin) with plain lines at
 * @plain_level (0: the default), waits for all it prints and checks it. */
static void
run_glib_logs (GLogLevelFlags plain_level)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, "glib-logs", NULL };
  /* GLib's default G_MESSAGES_PREFIXED: "(PRGNAME:PID): " before
   * WARNING, CRITICAL, ERROR and DEBUG records. */
  const char *env[] = { "G_MESSAGES_DEBUG=FakePlugin", "G_MESSAGES_PREFIXED=error,critical,warning,debug", NULL };
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  GLogLevelFlags plain = plain_level != 0 ? plain_level : G_LOG_LEVEL_DEBUG;
  gboolean started = FALSE, stopped = FALSE;

  g_ptr_array_set_size (records, 0);
  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                            "argv", argv,
                            "name", "fake-plugin",
                            "environment", env,
                            NULL);
  if (plain_level != 0)
    cp_process_discovery_set_output_log_level (discovery, plain_level);
  cp_process_discovery_start_async (discovery, NULL, started_cb, &started);
  HOST_TEST_WAIT_UNTIL (started);
  HOST_TEST_WAIT_UNTIL (find_record ("fake-plugin: glib-logs done") != NULL);

  /* Plain lines: the plugin's name once, at the configured level. */
  assert_record ("fake-plugin: glib-logs done", plain, "stderr", NULL);
  assert_record ("fake-plugin: a plain line", plain, "stderr", NULL);
  assert_record ("fake-plugin: a plain line with the name", plain, "stderr", NULL);
  assert_record ("fake-plugin: starting", plain, "stderr", NULL);

  /* GLib's records: their own level and domain, GLib's prefix gone
   * (INFO and DEBUG come on standard output, as GLib writes them; the
   * first one came before the address and was not taken for it). */
  assert_record ("fake-plugin: a message without a domain", G_LOG_LEVEL_MESSAGE, "stderr", NULL);
  assert_record ("fake-plugin: a warning", G_LOG_LEVEL_WARNING, "stderr", "FakePlugin");
  assert_record ("fake-plugin: an info before the address", G_LOG_LEVEL_INFO, "stdout", "FakePlugin");
  assert_record ("fake-plugin: an info", G_LOG_LEVEL_INFO, "stdout", "FakePlugin");
  assert_record ("fake-plugin: a debug line", G_LOG_LEVEL_DEBUG, "stdout", "FakePlugin");
  assert_record ("fake-plugin: a critical without a domain", G_LOG_LEVEL_CRITICAL, "stderr", NULL);
  /* ERROR would abort the host: CRITICAL instead. */
  assert_record ("fake-plugin: a pretend error", G_LOG_LEVEL_CRITICAL, "stderr", NULL);

  for (guint i = 0; i < records->len; i++)
    {
      const Record *r = g_ptr_array_index (records, i);

      g_test_message ("%s level %u [%s] %s", r->stream, (guint) r->level,
                      r->domain != NULL ? r->domain : "", r->message);
      g_assert_true (g_str_has_prefix (r->message, "fake-plugin: "));
      g_assert_false (g_str_has_prefix (r->message, "fake-plugin: fake-plugin"));
      /* No empty lines (GLib's writer prints one before each warning),
       * nothing of GLib's prefix or time stamp. */
      g_assert_cmpstr (r->message, !=, "fake-plugin: ");
      g_assert_null (strstr (r->message, "**"));
      g_assert_null (strstr (r->message, "(fake-plugin:"));
      g_assert_null (strstr (r->message, "(process:"));
      g_assert_null (strstr (r->message, "12:34:56"));
    }

  cp_process_discovery_stop_async (discovery, NULL, stopped_cb, &stopped);
  HOST_TEST_WAIT_UNTIL (stopped);
}

static void
test_forward_default (void)
{
  run_glib_logs (0);
}

static void
test_forward_level (gconstpointer data)
{
  run_glib_logs (GPOINTER_TO_UINT (data));
}

int
main (int    argc,
      char **argv)
{
  records = g_ptr_array_new_with_free_func (record_free);
  g_log_set_writer_func (writer, NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  host_test_add_ticker ();

  for (gsize i = 0; i < G_N_ELEMENTS (parse_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/host/plugin-output/parse/%" G_GSIZE_FORMAT, i);
      g_test_add_data_func (path, &parse_cases[i], test_parse);
    }
  g_test_add_func ("/host/plugin-output/parse/long", test_parse_long);
  g_test_add_func ("/host/plugin-output/property", test_property);
  g_test_add_func ("/host/plugin-output/forward/default", test_forward_default);
  g_test_add_data_func ("/host/plugin-output/forward/info",
                        GUINT_TO_POINTER (G_LOG_LEVEL_INFO), test_forward_level);
  g_test_add_data_func ("/host/plugin-output/forward/warning",
                        GUINT_TO_POINTER (G_LOG_LEVEL_WARNING), test_forward_level);

  return g_test_run ();
}
