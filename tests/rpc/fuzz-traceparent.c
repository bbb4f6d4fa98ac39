/* fuzz-traceparent.c: W3C traceparent and tracestate parsing
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input: the traceparent value, then optionally a newline and the
 * tracestate value. Whatever the bytes, parsing never fails loudly; what
 * it accepts has well-formed ids, formats to a version-00 traceparent that
 * parses back to the same ids, and keeps a tracestate of at most 32
 * members and 512 characters.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gsize
count_members (const char *tracestate)
{
  gsize n = 1;

  for (const char *p = tracestate; *p != '\0'; p++)
    n += *p == ',';
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *newline = memchr (data, '\n', size);
  g_autofree char *traceparent = NULL;
  g_autofree char *tracestate = NULL;
  g_autoptr(CpSpanContext) context = NULL;

  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
  if (newline != NULL)
    {
      traceparent = g_strndup ((const char *) data, (gsize) (newline - (const char *) data));
      tracestate = g_strndup (newline + 1, size - (gsize) (newline - (const char *) data) - 1);
    }
  else
    traceparent = g_strndup ((const char *) data, size);

  context = cp_span_context_parse (traceparent, tracestate);
  if (context != NULL)
    {
      g_autofree char *formatted = cp_span_context_to_traceparent (context);
      g_autoptr(CpSpanContext) back = cp_span_context_parse (formatted, NULL);
      g_autoptr(CpSpanContext) child = cp_span_context_new_child (context);
      const char *state = cp_span_context_get_tracestate (context);

      g_assert_cmpuint (strlen (formatted), ==, 55);
      g_assert_nonnull (back);
      g_assert_cmpstr (cp_span_context_get_trace_id (back), ==, cp_span_context_get_trace_id (context));
      g_assert_cmpstr (cp_span_context_get_span_id (back), ==, cp_span_context_get_span_id (context));
      g_assert_cmpstr (cp_span_context_get_parent_span_id (child), ==,
                       cp_span_context_get_span_id (context));
      if (state != NULL)
        {
          g_assert_cmpuint (strlen (state), <=, 512);
          g_assert_cmpuint (count_members (state), <=, 32);
          g_assert_true (g_utf8_validate (state, -1, NULL));
        }
    }
  return 0;
}
