/* metrics-test.h: a strict reader of the Prometheus text format, for the metrics tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Parses an exposition (text format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/) back into
 * samples, asserting its grammar on the way: `# HELP` and `# TYPE` at most
 * once per family and before its samples, metric and label names, label
 * values with only the three escapes of the format (\\, \" and \n), values
 * that are numbers or +Inf/-Inf/NaN, no duplicate sample, every sample in
 * a family of a known type (histograms: _bucket with le, _sum, _count).
 *
 * Samples are looked up by name and labels in any order:
 *   metrics_test_value (expo, "calls_total", "code", "ok", "method", "Get", NULL)
 */
#pragma once

#include <glib.h>
#include <string.h>

typedef struct {
  GHashTable *samples;   /* canonical key → gdouble* */
  GHashTable *types;     /* family → type */
  GHashTable *helps;     /* family → help text, unescaped */
  guint n_samples;
} MetricsExposition;

static inline void
metrics_exposition_free (MetricsExposition *expo)
{
  g_hash_table_unref (expo->samples);
  g_hash_table_unref (expo->types);
  g_hash_table_unref (expo->helps);
  g_free (expo);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MetricsExposition, metrics_exposition_free)

static inline gboolean
metrics_test_is_name (const char *name, gboolean metric)
{
  if (name[0] == '\0' || g_ascii_isdigit (name[0]))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && !(metric && *p == ':'))
      return FALSE;
  return TRUE;
}

static inline int
metrics_test_compare_labels (gconstpointer a, gconstpointer b)
{
  /* g_ptr_array_sort() passes pointers to the elements. */
  char * const *la = *(char * const * const *) a;
  char * const *lb = *(char * const * const *) b;

  return strcmp (la[0], lb[0]);
}

/* NAME{a=v,b=w} with the labels sorted by name and values unescaped. */
static inline char *
metrics_test_key (const char *name, GPtrArray *pairs /* char*[2] */)
{
  GString *key = g_string_new (name);

  g_ptr_array_sort (pairs, metrics_test_compare_labels);
  g_string_append_c (key, '{');
  for (guint i = 0; i < pairs->len; i++)
    {
      char **pair = pairs->pdata[i];

      g_string_append_printf (key, "%s%s=%s", i > 0 ? "," : "", pair[0], pair[1]);
    }
  g_string_append_c (key, '}');
  return g_string_free (key, FALSE);
}

static inline void
metrics_test_pair_free (gpointer data)
{
  g_strfreev (data);
}

/* Parses `{name="value",...}` at *p; leaves *p after the closing brace. */
static inline GPtrArray *
metrics_test_parse_labels (const char **p)
{
  GPtrArray *pairs = g_ptr_array_new_with_free_func (metrics_test_pair_free);
  const char *s = *p;

  if (*s != '{')
    return pairs;
  s++;
  while (*s != '}')
    {
      GString *name = g_string_new (NULL);
      GString *value = g_string_new (NULL);
      char **pair = g_new0 (char *, 3);

      while (*s != '=' && *s != '\0')
        g_string_append_c (name, *s++);
      g_assert_cmpint (*s, ==, '=');
      g_assert_true (metrics_test_is_name (name->str, FALSE));
      s++;
      g_assert_cmpint (*s, ==, '"');
      s++;
      while (*s != '"')
        {
          g_assert_cmpint (*s, !=, '\0');
          g_assert_cmpint (*s, !=, '\n');
          if (*s == '\\')
            {
              s++;
              if (*s == 'n')
                g_string_append_c (value, '\n');
              else if (*s == '\\' || *s == '"')
                g_string_append_c (value, *s);
              else
                g_error ("bad escape \\%c in a label value", *s);
              s++;
            }
          else
            g_string_append_c (value, *s++);
        }
      s++;
      g_assert_true (g_utf8_validate (value->str, -1, NULL));
      for (guint i = 0; i < pairs->len; i++)
        g_assert_cmpstr (((char **) pairs->pdata[i])[0], !=, name->str);
      pair[0] = g_string_free (name, FALSE);
      pair[1] = g_string_free (value, FALSE);
      g_ptr_array_add (pairs, pair);
      if (*s == ',')
        s++;
      else
        g_assert_cmpint (*s, ==, '}');
    }
  *p = s + 1;
  return pairs;
}

/* The family a sample belongs to (histograms: without the suffix). */
static inline const char *
metrics_test_family (MetricsExposition *expo, const char *name, char **owned)
{
  static const char * const suffixes[] = { "_bucket", "_sum", "_count" };

  if (g_hash_table_contains (expo->types, name))
    return name;
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    if (g_str_has_suffix (name, suffixes[i]))
      {
        *owned = g_strndup (name, strlen (name) - strlen (suffixes[i]));
        if (g_strcmp0 (g_hash_table_lookup (expo->types, *owned), "histogram") == 0)
          return *owned;
        g_clear_pointer (owned, g_free);
      }
  return NULL;
}

static inline char *
metrics_test_unescape_help (const char *text)
{
  GString *out = g_string_new (NULL);

  for (const char *s = text; *s != '\0'; s++)
    if (*s == '\\' && s[1] == 'n')
      g_string_append_c (out, '\n'), s++;
    else if (*s == '\\' && s[1] == '\\')
      g_string_append_c (out, '\\'), s++;
    else
      {
        g_assert_cmpint (*s, !=, '\\');
        g_string_append_c (out, *s);
      }
  return g_string_free (out, FALSE);
}

static inline MetricsExposition *
metrics_test_parse (const char *text)
{
  MetricsExposition *expo = g_new0 (MetricsExposition, 1);
  g_auto(GStrv) lines = NULL;
  g_autoptr(GHashTable) with_samples = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  expo->samples = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  expo->types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  expo->helps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  /* Lines end with \n, the last one included. */
  g_assert_true (text[0] == '\0' || g_str_has_suffix (text, "\n"));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];

      if (line[0] == '\0')
        {
          g_assert_null (lines[i + 1]);
          continue;
        }
      if (g_str_has_prefix (line, "# HELP ") || g_str_has_prefix (line, "# TYPE "))
        {
          gboolean help = line[2] == 'H';
          const char *rest = line + strlen ("# HELP ");
          const char *space = strchr (rest, ' ');
          g_autofree char *family = NULL;

          g_assert_nonnull (space);
          family = g_strndup (rest, space - rest);
          g_assert_true (metrics_test_is_name (family, TRUE));
          /* Before the family's samples, once. */
          g_assert_false (g_hash_table_contains (with_samples, family));
          if (help)
            {
              g_assert_false (g_hash_table_contains (expo->helps, family));
              g_hash_table_insert (expo->helps, g_strdup (family),
                                   metrics_test_unescape_help (space + 1));
            }
          else
            {
              const char *type = space + 1;

              g_assert_false (g_hash_table_contains (expo->types, family));
              g_assert_true (g_strv_contains ((const char * const[]) { "counter", "gauge", "histogram",
                                                                       "summary", "untyped", NULL },
                                              type));
              g_hash_table_insert (expo->types, g_strdup (family), g_strdup (type));
            }
          continue;
        }
      g_assert_cmpint (line[0], !=, '#');

      {
        const char *p = line;
        g_autoptr(GString) name = g_string_new (NULL);
        g_autoptr(GPtrArray) pairs = NULL;
        g_autofree char *key = NULL;
        g_autofree char *owned = NULL;
        const char *family;
        char *end = NULL;
        gdouble value;
        gboolean has_le = FALSE;

        while (*p != '{' && *p != ' ' && *p != '\0')
          g_string_append_c (name, *p++);
        g_assert_true (metrics_test_is_name (name->str, TRUE));
        pairs = metrics_test_parse_labels (&p);
        g_assert_cmpint (*p, ==, ' ');
        p++;
        if (strcmp (p, "+Inf") == 0)
          value = G_MAXDOUBLE;
        else
          {
            value = g_ascii_strtod (p, &end);
            g_assert_true (end != p && *end == '\0');
          }

        family = metrics_test_family (expo, name->str, &owned);
        if (family == NULL)
          g_error ("sample %s has no # TYPE", name->str);
        for (guint j = 0; j < pairs->len; j++)
          has_le |= strcmp (((char **) pairs->pdata[j])[0], "le") == 0;
        if (g_str_has_suffix (name->str, "_bucket") && family != name->str)
          g_assert_true (has_le);
        else
          g_assert_false (has_le);
        g_hash_table_add (with_samples, g_strdup (family));

        key = metrics_test_key (name->str, pairs);
        g_assert_false (g_hash_table_contains (expo->samples, key));
        g_hash_table_insert (expo->samples, g_steal_pointer (&key), g_memdup2 (&value, sizeof value));
        expo->n_samples++;
      }
    }
  return expo;
}

/* The value of NAME with label pairs (NULL-terminated), or -1 if absent. */
static inline gdouble
metrics_test_value (MetricsExposition *expo, const char *name, ...)
{
  g_autoptr(GPtrArray) pairs = g_ptr_array_new_with_free_func (metrics_test_pair_free);
  g_autofree char *key = NULL;
  const char *label;
  gdouble *value;
  va_list args;

  va_start (args, name);
  while ((label = va_arg (args, const char *)) != NULL)
    {
      char **pair = g_new0 (char *, 3);

      pair[0] = g_strdup (label);
      pair[1] = g_strdup (va_arg (args, const char *));
      g_ptr_array_add (pairs, pair);
    }
  va_end (args);
  key = metrics_test_key (name, pairs);
  value = g_hash_table_lookup (expo->samples, key);
  return value != NULL ? *value : -1;
}
