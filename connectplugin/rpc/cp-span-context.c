/* cp-span-context.c: W3C Trace Context level 1: parsing and formatting
 * traceparent and tracestate, new spans, the thread-default span
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The parser reads network bytes: it never fails loudly. A traceparent
 * that is not valid gives NULL (the caller starts a new trace, as the
 * specification says); a tracestate that is not valid is dropped.
 */
#include "cp-span-context.h"

#include <string.h>

/* W3C Trace Context, "tracestate": at most 32 list members; vendors
 * should propagate at least 512 characters. */
#define TRACESTATE_MAX_MEMBERS 32
#define TRACESTATE_MAX_LENGTH  512
/* Members longer than this are the first dropped when over the length. */
#define TRACESTATE_LONG_MEMBER 128

/* version "-" trace-id "-" parent-id "-" flags */
#define TRACEPARENT_LENGTH 55

#define FLAG_SAMPLED 0x01

/**
 * CpSpanContext:
 *
 * The identity of one span of a distributed trace, as W3C Trace Context
 * (level 1) carries it in the `traceparent` and `tracestate` headers: a
 * 16-byte trace id shared by every span of the trace, the span's own 8-byte
 * id, the id of its parent span (when it has one), the trace flags
 * (sampled) and the vendors' `tracestate`, kept verbatim.
 *
 * A span context is immutable and reference counted: copying it
 * (g_boxed_copy()) takes a reference.
 *
 * [method@ConnectPlugin.Invocation.get_span_context] gives the server span
 * of a call. Calls made through a [class@Channel] continue the
 * thread-default span ([func@ConnectPlugin.SpanContext.get_thread_default]),
 * which the server sets while a handler runs, or the one given with
 * [method@ConnectPlugin.CallOptions.set_parent_span].
 */
struct _CpSpanContext
{
  gatomicrefcount ref_count;

  guint8 trace_id[16];
  guint8 span_id[8];
  guint8 flags;
  gboolean has_parent;
  char trace_hex[33];
  char span_hex[17];
  char parent_hex[17];
  char *tracestate;             /* NULL: none */
};

G_DEFINE_BOXED_TYPE (CpSpanContext, cp_span_context, cp_span_context_ref, cp_span_context_unref)

/**
 * cp_span_context_ref:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Acquires a reference on @context.
 *
 * Returns: (transfer full): @context
 */
CpSpanContext *
cp_span_context_ref (CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);

  g_atomic_ref_count_inc (&context->ref_count);
  return context;
}

/**
 * cp_span_context_unref:
 * @context: (transfer full): a [struct@ConnectPlugin.SpanContext]
 *
 * Releases a reference on @context.
 */
void
cp_span_context_unref (CpSpanContext *context)
{
  g_return_if_fail (context != NULL);

  if (!g_atomic_ref_count_dec (&context->ref_count))
    return;
  g_free (context->tracestate);
  g_free (context);
}

/* ------------------------------------------------------------------ */
/* Ids                                                                  */

static const char hex_digits[] = "0123456789abcdef";

static void
to_hex (const guint8 *bytes,
        gsize         n,
        char         *out)
{
  for (gsize i = 0; i < n; i++)
    {
      out[2 * i] = hex_digits[bytes[i] >> 4];
      out[2 * i + 1] = hex_digits[bytes[i] & 0xf];
    }
  out[2 * n] = '\0';
}

static int
hex_value (char c)
{
  /* Lowercase only (W3C Trace Context: HEXDIGLC). */
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Reads 2 * @n lowercase hex digits into @out; FALSE if any is not one. */
static gboolean
from_hex (const char *text,
          gsize       n,
          guint8     *out)
{
  for (gsize i = 0; i < n; i++)
    {
      int hi = hex_value (text[2 * i]);
      int lo = hex_value (text[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

static gboolean
all_zero (const guint8 *bytes,
          gsize         n)
{
  for (gsize i = 0; i < n; i++)
    if (bytes[i] != 0)
      return FALSE;
  return TRUE;
}

static void
random_id (guint8 *out,
           gsize   n)
{
  do
    {
      for (gsize i = 0; i < n; i += 4)
        {
          guint32 r = g_random_int ();

          memcpy (out + i, &r, MIN (4, n - i));
        }
    }
  while (all_zero (out, n));
}

static CpSpanContext *
span_context_alloc (void)
{
  CpSpanContext *self = g_new0 (CpSpanContext, 1);

  g_atomic_ref_count_init (&self->ref_count);
  return self;
}

static void
new_span_id (CpSpanContext *self)
{
  random_id (self->span_id, sizeof self->span_id);
  to_hex (self->span_id, sizeof self->span_id, self->span_hex);
}

/**
 * cp_span_context_new_root:
 * @sampled: whether the trace is sampled (the `sampled` trace flag)
 *
 * Starts a new trace: a random trace id and span id, no parent.
 *
 * Returns: (transfer full): a new span context
 */
CpSpanContext *
cp_span_context_new_root (gboolean sampled)
{
  CpSpanContext *self = span_context_alloc ();

  random_id (self->trace_id, sizeof self->trace_id);
  to_hex (self->trace_id, sizeof self->trace_id, self->trace_hex);
  new_span_id (self);
  self->flags = sampled ? FLAG_SAMPLED : 0;
  return self;
}

/**
 * cp_span_context_new_child:
 * @parent: the parent span
 *
 * Makes a span of the same trace whose parent is @parent: the trace id,
 * flags and `tracestate` of @parent, a new random span id.
 *
 * Returns: (transfer full): a new span context
 */
CpSpanContext *
cp_span_context_new_child (const CpSpanContext *parent)
{
  CpSpanContext *self;

  g_return_val_if_fail (parent != NULL, NULL);

  self = span_context_alloc ();
  memcpy (self->trace_id, parent->trace_id, sizeof self->trace_id);
  memcpy (self->trace_hex, parent->trace_hex, sizeof self->trace_hex);
  new_span_id (self);
  self->flags = parent->flags;
  self->has_parent = TRUE;
  memcpy (self->parent_hex, parent->span_hex, sizeof self->parent_hex);
  self->tracestate = g_strdup (parent->tracestate);
  return self;
}

/* ------------------------------------------------------------------ */
/* tracestate                                                           */

static gboolean
is_lcalpha (char c)
{
  return c >= 'a' && c <= 'z';
}

static gboolean
is_key_char (char c)
{
  return is_lcalpha (c) || g_ascii_isdigit (c) || c == '_' || c == '-' || c == '*' || c == '/';
}

/* key = simple-key / multi-tenant-key (tenant-id "@" system-id). */
static gboolean
valid_key (const char *key,
           gsize       len)
{
  const char *at = memchr (key, '@', len);

  if (at == NULL)
    {
      if (len < 1 || len > 256 || !is_lcalpha (key[0]))
        return FALSE;
      for (gsize i = 1; i < len; i++)
        if (!is_key_char (key[i]))
          return FALSE;
      return TRUE;
    }
  else
    {
      gsize tenant = (gsize) (at - key), system = len - tenant - 1;

      if (tenant < 1 || tenant > 241 || system < 1 || system > 14)
        return FALSE;
      if (!is_lcalpha (key[0]) && !g_ascii_isdigit (key[0]))
        return FALSE;
      for (gsize i = 1; i < tenant; i++)
        if (!is_key_char (key[i]))
          return FALSE;
      if (!is_lcalpha (at[1]))
        return FALSE;
      for (gsize i = 2; i <= system; i++)
        if (!is_key_char (at[i]))
          return FALSE;
      return TRUE;
    }
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr;
 * nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static gboolean
valid_value (const char *value,
             gsize       len)
{
  if (len < 1 || len > 256 || value[len - 1] == ' ')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) value[i];

      if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
        return FALSE;
    }
  return TRUE;
}

/* The members of @text, trimmed of optional whitespace, empty ones left
 * out; NULL when one is not valid, a key repeats, or there are too many. */
static GPtrArray *
tracestate_members (const char *text)
{
  g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func (g_free);
  const char *p = text;

  while (TRUE)
    {
      const char *end = strchr (p, ',');
      const char *stop = end ? end : p + strlen (p);
      const char *eq;
      gsize len, key_len;

      while (p < stop && (*p == ' ' || *p == '\t'))
        p++;
      while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
        stop--;
      len = (gsize) (stop - p);
      if (len > 0)
        {
          eq = memchr (p, '=', len);
          if (eq == NULL)
            return NULL;
          key_len = (gsize) (eq - p);
          if (!valid_key (p, key_len) || !valid_value (eq + 1, len - key_len - 1))
            return NULL;
          for (guint i = 0; i < members->len; i++)
            {
              const char *other = members->pdata[i];

              if (strncmp (other, p, key_len + 1) == 0)
                return NULL;
            }
          if (members->len == TRACESTATE_MAX_MEMBERS)
            return NULL;
          g_ptr_array_add (members, g_strndup (p, len));
        }
      if (end == NULL)
        break;
      p = end + 1;
    }
  return g_steal_pointer (&members);
}

static gsize
joined_length (GPtrArray *members)
{
  gsize total = 0;

  for (guint i = 0; i < members->len; i++)
    total += strlen (members->pdata[i]) + (i > 0);
  return total;
}

/* The tracestate to keep: @text when valid and short enough, else its
 * members with the long ones, then the last ones, dropped until it fits;
 * NULL when not valid or empty. */
static char *
tracestate_normalize (const char *text)
{
  g_autoptr(GPtrArray) members = NULL;

  if (text == NULL)
    return NULL;
  members = tracestate_members (text);
  if (members == NULL || members->len == 0)
    return NULL;
  if (joined_length (members) > TRACESTATE_MAX_LENGTH)
    {
      for (guint i = members->len; i > 0; i--)
        if (strlen (members->pdata[i - 1]) > TRACESTATE_LONG_MEMBER)
          g_ptr_array_remove_index (members, i - 1);
      while (members->len > 0 && joined_length (members) > TRACESTATE_MAX_LENGTH)
        g_ptr_array_remove_index (members, members->len - 1);
      if (members->len == 0)
        return NULL;
    }
  g_ptr_array_add (members, NULL);
  return g_strjoinv (",", (char **) members->pdata);
}

/* ------------------------------------------------------------------ */
/* traceparent                                                          */

/**
 * cp_span_context_parse:
 * @traceparent: (nullable): the value of a `traceparent` header
 * @tracestate: (nullable): the value of the `tracestate` header(s),
 *   comma-joined
 *
 * Parses the trace context a peer sent, as W3C Trace Context level 1 says:
 * version `00` is exactly `00-<32 hex>-<16 hex>-<2 hex>` in lowercase;
 * a later version is read from its first 55 characters when they are
 * followed by `-` or nothing; version `ff`, an all-zero trace id or span
 * id, or anything else makes the header invalid. A `tracestate` that is
 * not valid (or has more than 32 members) is dropped; one longer than 512
 * characters is shortened member by member.
 *
 * The result is the peer's span: its span id is the one the peer sent
 * (the parent of the span the receiver starts, see
 * [method@ConnectPlugin.SpanContext.new_child]); only the sampled flag is
 * kept.
 *
 * Returns: (transfer full) (nullable): the span context, or %NULL when
 *   @traceparent is missing or not valid
 */
CpSpanContext *
cp_span_context_parse (const char *traceparent,
                       const char *tracestate)
{
  g_autoptr(CpSpanContext) self = NULL;
  guint8 version, flags;
  gsize len;

  if (traceparent == NULL)
    return NULL;
  len = strlen (traceparent);
  if (len < TRACEPARENT_LENGTH)
    return NULL;
  if (!from_hex (traceparent, 1, &version) || version == 0xff)
    return NULL;
  if (version == 0 ? len != TRACEPARENT_LENGTH
                   : (len > TRACEPARENT_LENGTH && traceparent[TRACEPARENT_LENGTH] != '-'))
    return NULL;
  if (traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-')
    return NULL;

  self = span_context_alloc ();
  if (!from_hex (traceparent + 3, 16, self->trace_id) ||
      !from_hex (traceparent + 36, 8, self->span_id) ||
      !from_hex (traceparent + 53, 1, &flags))
    return NULL;
  if (all_zero (self->trace_id, 16) || all_zero (self->span_id, 8))
    return NULL;
  memcpy (self->trace_hex, traceparent + 3, 32);
  memcpy (self->span_hex, traceparent + 36, 16);
  self->flags = flags & FLAG_SAMPLED;
  self->tracestate = tracestate_normalize (tracestate);
  return g_steal_pointer (&self);
}

/**
 * cp_span_context_to_traceparent:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Formats the `traceparent` header that makes @context's span the parent
 * of the receiver's: `00-<trace id>-<span id>-<flags>`.
 *
 * Returns: (transfer full): the header value
 */
char *
cp_span_context_to_traceparent (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);

  return g_strdup_printf ("00-%s-%s-%02x", context->trace_hex, context->span_hex, context->flags);
}

/* ------------------------------------------------------------------ */
/* Getters                                                              */

/**
 * cp_span_context_get_trace_id:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Gets the trace id as 32 lowercase hex digits.
 *
 * Returns: (transfer none): the trace id
 */
const char *
cp_span_context_get_trace_id (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);
  return context->trace_hex;
}

/**
 * cp_span_context_get_trace_id_bytes:
 * @context: a [struct@ConnectPlugin.SpanContext]
 * @length: (out) (optional): set to 16
 *
 * Gets the trace id as bytes.
 *
 * Returns: (transfer none) (array length=length): the 16 bytes of the trace id
 */
const guint8 *
cp_span_context_get_trace_id_bytes (const CpSpanContext *context,
                                    gsize               *length)
{
  g_return_val_if_fail (context != NULL, NULL);
  if (length != NULL)
    *length = sizeof context->trace_id;
  return context->trace_id;
}

/**
 * cp_span_context_get_span_id:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Gets the span id as 16 lowercase hex digits.
 *
 * Returns: (transfer none): the span id
 */
const char *
cp_span_context_get_span_id (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);
  return context->span_hex;
}

/**
 * cp_span_context_get_parent_span_id:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Gets the span id of the parent span, as 16 lowercase hex digits.
 *
 * Returns: (transfer none) (nullable): the parent's span id, or %NULL for
 *   the root span of a trace (and for a context parsed from a header)
 */
const char *
cp_span_context_get_parent_span_id (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);
  return context->has_parent ? context->parent_hex : NULL;
}

/**
 * cp_span_context_get_flags:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Gets the trace flags (bit 0: sampled).
 *
 * Returns: the trace flags
 */
guint8
cp_span_context_get_flags (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, 0);
  return context->flags;
}

/**
 * cp_span_context_is_sampled:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Gets whether the caller may have recorded the trace (the `sampled`
 * flag).
 *
 * Returns: %TRUE when sampled
 */
gboolean
cp_span_context_is_sampled (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, FALSE);
  return (context->flags & FLAG_SAMPLED) != 0;
}

/**
 * cp_span_context_get_tracestate:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Gets the vendors' trace state, as received (list members joined by
 * `,`, optional whitespace and empty members removed).
 *
 * Returns: (transfer none) (nullable): the `tracestate`, or %NULL for none
 */
const char *
cp_span_context_get_tracestate (const CpSpanContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);
  return context->tracestate;
}

/* ------------------------------------------------------------------ */
/* The thread-default span                                              */

static void
stack_free (gpointer data)
{
  g_slist_free_full (data, (GDestroyNotify) cp_span_context_unref);
}

static GPrivate current_stack = G_PRIVATE_INIT (stack_free);

/**
 * cp_span_context_push_thread_default:
 * @context: a [struct@ConnectPlugin.SpanContext]
 *
 * Makes @context the span that calls made from this thread continue
 * (see [func@ConnectPlugin.SpanContext.get_thread_default]) until
 * [method@ConnectPlugin.SpanContext.pop_thread_default]. Pushes nest, like
 * g_main_context_push_thread_default().
 *
 * The server pushes a call's span around its handler; a handler that
 * makes calls later (from a callback) may push
 * [method@ConnectPlugin.Invocation.get_span_context] around them, or set
 * it on the call's options ([method@ConnectPlugin.CallOptions.set_parent_span]).
 */
void
cp_span_context_push_thread_default (CpSpanContext *context)
{
  GSList *stack;

  g_return_if_fail (context != NULL);

  stack = g_private_get (&current_stack);
  g_private_set (&current_stack, g_slist_prepend (stack, cp_span_context_ref (context)));
}

/**
 * cp_span_context_pop_thread_default:
 * @context: the [struct@ConnectPlugin.SpanContext] last pushed
 *
 * Undoes [method@ConnectPlugin.SpanContext.push_thread_default].
 */
void
cp_span_context_pop_thread_default (CpSpanContext *context)
{
  GSList *stack = g_private_get (&current_stack);

  g_return_if_fail (context != NULL);
  g_return_if_fail (stack != NULL && stack->data == context);

  stack = g_slist_delete_link (stack, stack);
  /* g_private_set (), unlike g_private_replace (), frees nothing. */
  g_private_set (&current_stack, stack);
  cp_span_context_unref (context);
}

/**
 * cp_span_context_get_thread_default:
 *
 * Gets the span last pushed on this thread and not popped
 * ([method@ConnectPlugin.SpanContext.push_thread_default]): while a
 * [class@RpcServer] runs a method handler, the call's server span.
 *
 * Returns: (transfer none) (nullable): the thread-default span, or %NULL
 */
CpSpanContext *
cp_span_context_get_thread_default (void)
{
  GSList *stack = g_private_get (&current_stack);

  return stack ? stack->data : NULL;
}
