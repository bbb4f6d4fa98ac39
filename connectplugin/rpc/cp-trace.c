/* cp-trace.c: the engines' tracing helpers (server spans from request
 * headers) and per-call debug log lines
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-trace-private.h"

#include "cp-error.h"
#include "cp-log.h"

#include <string.h>

CpSpanContext *
cp_trace_server_span (SoupMessageHeaders *headers,
                      gboolean            tracing)
{
  return cp_trace_server_span_from (soup_message_headers_get_one (headers, "traceparent"),
                                    headers, tracing);
}

CpSpanContext *
cp_trace_server_span_from (const char         *traceparent,
                           SoupMessageHeaders *headers,
                           gboolean            tracing)
{
  g_autoptr(CpSpanContext) caller = NULL;

  if (traceparent == NULL)
    return tracing ? cp_span_context_new_root (TRUE) : NULL;
  caller = cp_span_context_parse (traceparent,
                                  soup_message_headers_get_list (headers, "tracestate"));
  /* Not valid: a new trace, as if none came (W3C Trace Context). */
  if (caller == NULL)
    return tracing ? cp_span_context_new_root (TRUE) : NULL;
  return cp_span_context_new_child (caller);
}

/**
 * cp_log_debug_enabled:
 * @log_domain: (nullable): a log domain, as given to g_log_structured()
 *
 * Whether GLib's default log writer would show the debug messages of the
 * domain @log_domain: what g_log_writer_default_would_drop() answers,
 * negated, without its cost. That function reads `G_MESSAGES_DEBUG` from the
 * environment every time it is asked; this one reads it once, at its first
 * call, and keeps GLib's rule (the value `all`, or @log_domain anywhere in
 * it). g_log_set_debug_enabled() is asked at every call, so it turns debug
 * output on and off at run time; a change of `G_MESSAGES_DEBUG` after the
 * first call is not seen.
 *
 * For handlers that log every call at debug level: format the line only
 * when this returns %TRUE, as the library does for its per-call log lines.
 *
 * Returns: %TRUE if debug messages of @log_domain are shown
 */
gboolean
cp_log_debug_enabled (const char *log_domain)
{
  static gsize checked = 0;
  static char *domains = NULL;   /* G_MESSAGES_DEBUG at the first call */

  if (g_log_get_debug_enabled ())
    return TRUE;
  if (g_once_init_enter (&checked))
    {
      domains = g_strdup (g_getenv ("G_MESSAGES_DEBUG"));
      g_once_init_leave (&checked, 1);
    }
  return domains != NULL &&
         (strcmp (domains, "all") == 0 || (log_domain != NULL && strstr (domains, log_domain) != NULL));
}

gboolean
cp_trace_log_enabled (void)
{
  return cp_log_debug_enabled (G_LOG_DOMAIN);
}

static const char *
code_name (const GError *outcome)
{
  return outcome != NULL ? cp_error_code_to_string (cp_error_get_code (outcome)) : "ok";
}

void
cp_trace_log_call (CpSpanKind     kind,
                   const char    *procedure,
                   const GError  *outcome,
                   gint64         duration_us,
                   const char    *peer,
                   CpSpanContext *context)
{
  const char *side = kind == CP_SPAN_KIND_CLIENT ? "client"
                   : kind == CP_SPAN_KIND_ROUTER ? "router" : "server";
  const char *code = code_name (outcome);
  const char *trace_id = context != NULL ? cp_span_context_get_trace_id (context) : "";
  g_autofree char *duration = g_strdup_printf ("%" G_GINT64_FORMAT, duration_us);
  g_autofree char *message = NULL;
  GLogField fields[] = {
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "MESSAGE", NULL, -1 },
    { "CP_SIDE", side, -1 },
    { "CP_METHOD", procedure, -1 },
    { "CP_CODE", code, -1 },
    { "CP_DURATION_US", duration, -1 },
    { "CP_PEER", peer != NULL ? peer : "", -1 },
    { "CP_TRACE_ID", trace_id, -1 },
  };

  message = g_strdup_printf ("%s call %s: %s in %s us%s%s%s%s", side, procedure, code, duration,
                             peer != NULL ? ", peer " : "", peer != NULL ? peer : "",
                             context != NULL ? ", trace " : "", trace_id);
  fields[1].value = message;
  g_log_structured_array (G_LOG_LEVEL_DEBUG, fields, G_N_ELEMENTS (fields));
}

char *
cp_trace_peer_string (GSocketAddress *address)
{
  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
      GInetAddress *ip = g_inet_socket_address_get_address (inet);
      g_autofree char *host = g_inet_address_to_string (ip);
      guint16 port = g_inet_socket_address_get_port (inet);

      if (g_inet_address_get_family (ip) == G_SOCKET_FAMILY_IPV6)
        return g_strdup_printf ("[%s]:%u", host, port);
      return g_strdup_printf ("%s:%u", host, port);
    }
  if (address != NULL)
    return g_strdup ("unix");
  return NULL;
}
