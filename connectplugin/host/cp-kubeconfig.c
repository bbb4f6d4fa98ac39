/* cp-kubeconfig.c: kubeconfig files (a small YAML reader) and the in-cluster configuration
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A kubeconfig is YAML, but kubectl writes a small part of it: block
 * mappings and sequences, plain and quoted scalars, `{}` and `[]`. The
 * reader below takes that part (plus block scalars and comments) into a
 * JsonNode tree and refuses the rest with an error naming the line, so a
 * file it cannot read fails clearly instead of being half-read. JSON text
 * (also valid kubeconfig) goes to json-glib.
 */
#include <string.h>

#include "cp-kubernetes-private.h"
#include "cp-error.h"

#define MAX_DEPTH 64
#define MAX_CONFIG_SIZE (4 * 1024 * 1024)
#define DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ------------------------------------------------------------------ */
/* The YAML subset                                                      */

/* One line of input. A sequence entry "- key: value" is read by moving
 * @indent and @text past the "- ", so that the entry's mapping continues on
 * the next lines at the same column. */
typedef struct {
  const char *raw;     /* the whole line */
  const char *text;    /* after the indentation */
  int indent;
  gboolean blank;      /* empty or spaces only */
  gboolean comment;    /* a comment only */
} Line;

typedef struct {
  Line *lines;
  guint n;
  guint i;
  guint depth;
} Reader;

static gboolean
fail_at (Reader      *r,
         GError     **error,
         const char  *what)
{
  g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
               "kubeconfig line %u: %s", MIN (r->i, r->n - 1) + 1, what);
  return FALSE;
}

static void
skip_blank (Reader *r)
{
  while (r->i < r->n && (r->lines[r->i].blank || r->lines[r->i].comment))
    r->i++;
}

static gboolean
is_seq_entry (const char *text)
{
  return text[0] == '-' && (text[1] == '\0' || text[1] == ' ');
}

/* Reads a quoted scalar at @s; *@end is set past the closing quote. */
static char *
read_quoted (const char  *s,
             const char **end)
{
  GString *out = g_string_new (NULL);
  char quote = *s++;

  while (*s != '\0')
    {
      if (*s == quote)
        {
          if (quote == '\'' && s[1] == '\'')
            {
              g_string_append_c (out, '\'');
              s += 2;
              continue;
            }
          *end = s + 1;
          return g_string_free (out, FALSE);
        }
      if (quote == '"' && *s == '\\')
        {
          s++;
          switch (*s)
            {
            case 'n': g_string_append_c (out, '\n'); break;
            case 't': g_string_append_c (out, '\t'); break;
            case 'r': g_string_append_c (out, '\r'); break;
            case '"': case '\\': case '/': case ' ': g_string_append_c (out, *s); break;
            case 'x': case 'u':
              {
                guint digits = *s == 'x' ? 2 : 4;
                gunichar c = 0;

                for (guint k = 1; k <= digits; k++)
                  {
                    int v = g_ascii_xdigit_value (s[k]);
                    if (v < 0)
                      goto bad;
                    c = c * 16 + (gunichar) v;
                  }
                if (c == 0 || !g_unichar_validate (c))
                  goto bad;
                g_string_append_unichar (out, c);
                s += digits;
                break;
              }
            default:
              goto bad;
            }
          s++;
          continue;
        }
      g_string_append_c (out, *s++);
    }
bad:
  g_string_free (out, TRUE);
  *end = NULL;
  return NULL;
}

/* Whether only spaces or a comment follow at @s. */
static gboolean
only_comment_left (const char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  return *s == '\0' || *s == '#';
}

/* An inline scalar: quoted, plain, `{}`, `[]`. */
static JsonNode *
read_scalar (Reader      *r,
             const char  *s,
             GError     **error)
{
  JsonNode *node;

  if (*s == '"' || *s == '\'')
    {
      const char *end = NULL;
      g_autofree char *value = read_quoted (s, &end);

      if (value == NULL || !only_comment_left (end))
        {
          fail_at (r, error, "bad quoted string");
          return NULL;
        }
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (node, value);
      return node;
    }
  if (g_str_has_prefix (s, "{}") && only_comment_left (s + 2))
    {
      node = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (node, json_object_new ());
      return node;
    }
  if (g_str_has_prefix (s, "[]") && only_comment_left (s + 2))
    {
      node = json_node_new (JSON_NODE_ARRAY);
      json_node_take_array (node, json_array_new ());
      return node;
    }
  if (strchr ("{[&*!%@`", *s) != NULL)
    {
      fail_at (r, error, "flow collections, anchors, aliases and tags are not supported");
      return NULL;
    }
  {
    const char *hash = strstr (s, " #");
    gsize len = hash != NULL ? (gsize) (hash - s) : strlen (s);
    g_autofree char *value = g_strndup (s, len);

    g_strchomp (value);
    if (strcmp (value, "~") == 0 || strcmp (value, "null") == 0)
      return json_node_init_null (json_node_alloc ());
    node = json_node_new (JSON_NODE_VALUE);
    json_node_set_string (node, value);
    return node;
  }
}

/* A `|` or `>` block scalar whose header is @header; the lines after the
 * current one indented more than @parent_indent. */
static JsonNode *
read_block_scalar (Reader      *r,
                   int          parent_indent,
                   const char  *header,
                   GError     **error)
{
  gboolean folded = header[0] == '>';
  char chomp = header[1] == '-' || header[1] == '+' ? header[1] : 0;
  const char *after = header + 1 + (chomp != 0);
  g_autoptr(GString) out = g_string_new (NULL);
  int content_indent = -1;
  JsonNode *node;

  if (!only_comment_left (after))
    return fail_at (r, error, "unsupported block scalar header"), NULL;
  r->i++;
  for (; r->i < r->n; r->i++)
    {
      Line *l = &r->lines[r->i];

      if (l->blank)
        {
          g_string_append_c (out, '\n');
          continue;
        }
      if (l->indent <= parent_indent)
        break;
      if (content_indent < 0)
        content_indent = l->indent;
      if (l->indent < content_indent)
        return fail_at (r, error, "bad indentation in a block scalar"), NULL;
      if (out->len > 0 && out->str[out->len - 1] != '\n')
        g_string_append_c (out, folded ? ' ' : '\n');
      g_string_append (out, l->raw + content_indent);
      if (!folded)
        g_string_append_c (out, '\n');
    }
  while (out->len > 0 && out->str[out->len - 1] == '\n' && chomp != '+')
    g_string_truncate (out, out->len - 1);
  if (chomp != '-' && out->len > 0)
    g_string_append_c (out, '\n');
  node = json_node_new (JSON_NODE_VALUE);
  json_node_set_string (node, out->str);
  return node;
}

/* Splits "key: value" (the key plain or quoted): the key, and *@value set
 * to what follows the colon (spaces skipped). NULL when @text is no key. */
static char *
split_key (const char  *text,
           const char **value)
{
  const char *colon;
  char *key;

  if (*text == '"' || *text == '\'')
    {
      const char *end = NULL;

      key = read_quoted (text, &end);
      if (key == NULL)
        return NULL;
      while (*end == ' ')
        end++;
      if (*end != ':' || (end[1] != '\0' && end[1] != ' ' && end[1] != '\t'))
        {
          g_free (key);
          return NULL;
        }
      colon = end;
    }
  else
    {
      if (*text == '#' || *text == '\0')
        return NULL;
      for (colon = text; *colon != '\0'; colon++)
        {
          if (*colon == '#' && colon > text && colon[-1] == ' ')
            return NULL;
          if (*colon == ':' && (colon[1] == '\0' || colon[1] == ' ' || colon[1] == '\t'))
            break;
        }
      if (*colon == '\0')
        return NULL;
      key = g_strndup (text, colon - text);
      g_strchomp (key);
    }
  colon++;
  while (*colon == ' ' || *colon == '\t')
    colon++;
  *value = colon;
  return key;
}

static JsonNode *read_block (Reader *r, int indent, GError **error);
static JsonNode *read_sequence (Reader *r, int indent, GError **error);

/* The value after "key:" or "- ": inline, a block scalar, or the block on
 * the next lines (a sequence may sit at the key's own column). */
static JsonNode *
read_value (Reader      *r,
            int          indent,
            const char  *rest,
            gboolean     after_key,
            GError     **error)
{
  if (*rest != '\0' && *rest != '#')
    {
      JsonNode *node;

      if (*rest == '|' || *rest == '>')
        return read_block_scalar (r, indent, rest, error);
      node = read_scalar (r, rest, error);
      r->i++;
      return node;
    }
  r->i++;
  skip_blank (r);
  if (r->i < r->n && r->lines[r->i].indent > indent)
    return read_block (r, r->lines[r->i].indent, error);
  if (after_key && r->i < r->n && r->lines[r->i].indent == indent &&
      is_seq_entry (r->lines[r->i].text))
    return read_sequence (r, indent, error);
  return json_node_init_null (json_node_alloc ());
}

static JsonNode *
read_mapping (Reader      *r,
              int          indent,
              GError     **error)
{
  g_autoptr(JsonObject) object = json_object_new ();

  for (skip_blank (r); r->i < r->n; skip_blank (r))
    {
      Line *l = &r->lines[r->i];
      const char *rest = NULL;
      g_autofree char *key = NULL;
      JsonNode *value;

      if (l->indent < indent || (l->indent == indent && is_seq_entry (l->text)))
        break;
      if (l->indent > indent)
        return fail_at (r, error, "bad indentation"), NULL;
      key = split_key (l->text, &rest);
      if (key == NULL)
        return fail_at (r, error, "expected “key: value”"), NULL;
      value = read_value (r, indent, rest, TRUE, error);
      if (value == NULL)
        return NULL;
      json_object_set_member (object, key, value);
    }
  return json_node_init_object (json_node_alloc (), object);
}

static JsonNode *
read_sequence (Reader      *r,
               int          indent,
               GError     **error)
{
  g_autoptr(JsonArray) array = json_array_new ();

  for (skip_blank (r); r->i < r->n; skip_blank (r))
    {
      Line *l = &r->lines[r->i];
      const char *rest;
      const char *ignored;
      g_autofree char *key = NULL;
      JsonNode *item;

      if (l->indent < indent || (l->indent == indent && !is_seq_entry (l->text)))
        break;
      if (l->indent > indent)
        return fail_at (r, error, "bad indentation"), NULL;
      rest = l->text + 1;
      while (*rest == ' ')
        rest++;
      key = *rest != '\0' ? split_key (rest, &ignored) : NULL;
      if (key != NULL || is_seq_entry (rest))
        {
          /* "- key: value" or "- - x": a block starting on this line. */
          l->indent += (int) (rest - l->text);
          l->text = rest;
          item = read_block (r, l->indent, error);
        }
      else
        item = read_value (r, indent, rest, FALSE, error);
      if (item == NULL)
        return NULL;
      json_array_add_element (array, item);
    }
  return json_node_init_array (json_node_alloc (), array);
}

static JsonNode *
read_block (Reader      *r,
            int          indent,
            GError     **error)
{
  JsonNode *node;

  if (++r->depth > MAX_DEPTH)
    return fail_at (r, error, "nested too deeply"), NULL;
  if (is_seq_entry (r->lines[r->i].text))
    node = read_sequence (r, indent, error);
  else
    {
      const char *rest;
      g_autofree char *key = split_key (r->lines[r->i].text, &rest);

      if (key == NULL)
        return fail_at (r, error, "expected “key: value” or “- ”"), NULL;
      node = read_mapping (r, indent, error);
    }
  r->depth--;
  return node;
}

static JsonNode *
parse_json (const char  *text,
            gsize        length,
            GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (!cp_kube_json_is_one_object (text, length))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "kubeconfig: not one JSON object");
      return NULL;
    }
  if (!json_parser_load_from_data (parser, text, (gssize) length, &local))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "kubeconfig: bad JSON: %s", local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  return root != NULL ? json_node_copy (root) : json_node_init_null (json_node_alloc ());
}

JsonNode *
cp_kube_yaml_parse (const char  *text,
                    gsize        length,
                    GError     **error)
{
  g_autofree char *copy = NULL;
  g_auto(GStrv) raw = NULL;
  g_autofree Line *lines = NULL;
  Reader r = { 0 };
  JsonNode *root;
  const char *first = text;
  gboolean seen_content = FALSE;

  if (length > MAX_CONFIG_SIZE)
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: larger than %d bytes", MAX_CONFIG_SIZE), NULL;
  if (memchr (text, '\0', length) != NULL || !g_utf8_validate (text, (gssize) length, NULL))
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: not UTF-8 text"), NULL;
  while (first < text + length && g_ascii_isspace (*first))
    first++;
  if (first < text + length && (*first == '{' || *first == '['))
    return parse_json (text, length, error);

  copy = g_strndup (text, length);
  raw = g_strsplit (copy, "\n", -1);
  r.n = g_strv_length (raw);
  lines = g_new0 (Line, r.n + 1);
  r.lines = lines;
  for (guint k = 0; k < r.n; k++)
    {
      char *s = raw[k];
      gsize len = strlen (s);
      Line *l = &lines[k];

      if (len > 0 && s[len - 1] == '\r')
        s[len - 1] = '\0';
      l->raw = s;
      while (s[l->indent] == ' ')
        l->indent++;
      l->text = s + l->indent;
      l->blank = l->text[strspn (l->text, " \t")] == '\0';
      l->comment = !l->blank && l->text[0] == '#';
      if (!l->blank && l->text[0] == '\t')
        {
          r.i = k;
          return fail_at (&r, error, "tabs cannot indent YAML"), NULL;
        }
      /* "---" may start the (one) document; a second one is refused. */
      if (l->indent == 0 && g_str_has_prefix (s, "---") && only_comment_left (s + 3) &&
          !seen_content)
        l->comment = TRUE;
      seen_content |= !l->blank && !l->comment;
    }

  skip_blank (&r);
  if (r.i >= r.n)
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: empty"), NULL;
  root = read_block (&r, r.lines[r.i].indent, error);
  if (root == NULL)
    return NULL;
  skip_blank (&r);
  if (r.i < r.n)
    {
      json_node_unref (root);
      return fail_at (&r, error, "unexpected content (bad indentation?)"), NULL;
    }
  return root;
}

/* ------------------------------------------------------------------ */
/* kubeconfig                                                          */

void
cp_kube_config_free (CpKubeConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->server);
  g_free (config->ca_pem);
  if (config->token != NULL)
    explicit_bzero (config->token, strlen (config->token));
  g_free (config->token);
  g_free (config->client_cert_pem);
  if (config->client_key_pem != NULL)
    explicit_bzero (config->client_key_pem, strlen (config->client_key_pem));
  g_free (config->client_key_pem);
  g_free (config->namespace);
  g_free (config);
}

static JsonObject *
member_object (JsonObject *object,
               const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static const char *
member_string (JsonObject *object,
               const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
member_true (JsonObject *object,
             const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_BOOLEAN)
    return json_node_get_boolean (node);
  return g_strcmp0 (member_string (object, name), "true") == 0;
}

/* The @field object of the entry of list @list named @name
 * (contexts[].context, clusters[].cluster, users[].user). */
static JsonObject *
named_entry (JsonObject  *root,
             const char  *list,
             const char  *field,
             const char  *name,
             GError     **error)
{
  JsonNode *node = json_object_get_member (root, list);
  JsonArray *array = node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      JsonObject *entry = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;

      if (g_strcmp0 (member_string (entry, "name"), name) == 0)
        {
          JsonObject *value = member_object (entry, field);

          if (value == NULL)
            g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                         "kubeconfig: %s “%s” has no %s", list, name, field);
          return value;
        }
    }
  g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
               "kubeconfig: no %s named “%s”", field, name);
  return NULL;
}

/* Text from @object's "@name-data" (base64) or the file @name names
 * (relative to @base_dir). NULL without error when neither is there. */
static char *
data_or_file (JsonObject  *object,
              const char  *name,
              const char  *base_dir,
              GError     **error)
{
  g_autofree char *data_name = g_strconcat (name, "-data", NULL);
  const char *data = member_string (object, data_name);
  const char *file = member_string (object, name);
  g_autofree char *path = NULL;
  g_autoptr(GError) local = NULL;
  char *text = NULL;
  gsize len = 0;

  if (data != NULL && *data != '\0')
    {
      guchar *bytes;

      for (const char *p = data; *p != '\0'; p++)
        if (!g_ascii_isalnum (*p) && strchr ("+/=\n\r ", *p) == NULL)
          return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                              "kubeconfig: %s is not base64", data_name), NULL;
      bytes = g_base64_decode (data, &len);
      text = g_strndup ((const char *) bytes, len);
      g_free (bytes);
    }
  else if (file != NULL && *file != '\0')
    {
      path = g_path_is_absolute (file) || base_dir == NULL
               ? g_strdup (file) : g_build_filename (base_dir, file, NULL);
      if (!g_file_get_contents (path, &text, &len, &local))
        return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                            "kubeconfig: %s: %s", name, local->message), NULL;
    }
  else
    return NULL;

  if (strlen (text) != len || !g_utf8_validate (text, -1, NULL))
    {
      g_free (text);
      return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                          "kubeconfig: %s is not PEM text", name), NULL;
    }
  return text;
}

static gboolean
check_server (const char  *server,
              GError     **error)
{
  g_autoptr(GUri) uri = NULL;

  if (server != NULL)
    uri = g_uri_parse (server, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
      (!g_str_has_prefix (server, "https://") && !g_str_has_prefix (server, "http://")))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "kubeconfig: the cluster's server “%s” is not an http(s) URL",
                   server != NULL ? server : "");
      return FALSE;
    }
  return TRUE;
}

/* The user's credentials into @config. */
static gboolean
read_user (CpKubeConfig  *config,
           JsonObject    *user,
           const char    *base_dir,
           GError       **error)
{
  const char *token = member_string (user, "token");
  const char *token_file = member_string (user, "tokenFile");
  GError *local = NULL;

  if (token != NULL && *token != '\0')
    config->token = g_strdup (token);
  else if (token_file != NULL && *token_file != '\0')
    {
      g_autofree char *path = g_path_is_absolute (token_file) || base_dir == NULL
                                ? g_strdup (token_file)
                                : g_build_filename (base_dir, token_file, NULL);
      g_autoptr(GError) io = NULL;

      if (!g_file_get_contents (path, &config->token, NULL, &io))
        return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                            "kubeconfig: tokenFile: %s", io->message), FALSE;
      g_strstrip (config->token);
    }
  config->client_cert_pem = data_or_file (user, "client-certificate", base_dir, &local);
  if (local == NULL)
    config->client_key_pem = data_or_file (user, "client-key", base_dir, &local);
  if (local != NULL)
    return g_propagate_error (error, local), FALSE;
  if ((config->client_cert_pem == NULL) != (config->client_key_pem == NULL))
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: a client certificate needs its key and the other way round"),
           FALSE;
  return TRUE;
}

CpKubeConfig *
cp_kube_config_parse (const char  *text,
                      gsize        length,
                      const char  *base_dir,
                      const char  *context,
                      GError     **error)
{
  g_autoptr(JsonNode) root_node = cp_kube_yaml_parse (text, length, error);
  g_autoptr(CpKubeConfig) config = NULL;
  JsonObject *root, *ctx, *cluster, *user = NULL;
  const char *cluster_name, *user_name, *ns;
  GError *local = NULL;

  if (root_node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root_node))
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: not a mapping"), NULL;
  root = json_node_get_object (root_node);
  if (context == NULL || *context == '\0')
    context = member_string (root, "current-context");
  if (context == NULL || *context == '\0')
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: no context given and no current-context"), NULL;
  ctx = named_entry (root, "contexts", "context", context, error);
  if (ctx == NULL)
    return NULL;
  cluster_name = member_string (ctx, "cluster");
  if (cluster_name == NULL)
    return g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                        "kubeconfig: context “%s” names no cluster", context), NULL;
  cluster = named_entry (root, "clusters", "cluster", cluster_name, error);
  if (cluster == NULL)
    return NULL;
  user_name = member_string (ctx, "user");
  if (user_name != NULL && *user_name != '\0')
    {
      user = named_entry (root, "users", "user", user_name, error);
      if (user == NULL)
        return NULL;
    }

  config = g_new0 (CpKubeConfig, 1);
  if (!check_server (member_string (cluster, "server"), error))
    return NULL;
  config->server = g_strdup (member_string (cluster, "server"));
  while (g_str_has_suffix (config->server, "/"))
    config->server[strlen (config->server) - 1] = '\0';
  config->insecure = member_true (cluster, "insecure-skip-tls-verify");
  config->ca_pem = data_or_file (cluster, "certificate-authority", base_dir, &local);
  if (local != NULL)
    return g_propagate_error (error, local), NULL;
  if (user != NULL && !read_user (config, user, base_dir, error))
    return NULL;
  ns = member_string (ctx, "namespace");
  config->namespace = ns != NULL && *ns != '\0' ? g_strdup (ns) : NULL;
  return g_steal_pointer (&config);
}

/* ------------------------------------------------------------------ */
/* In-cluster                                                           */

CpKubeConfig *
cp_kube_config_in_cluster (const char  *sa_dir,
                           GError     **error)
{
  const char *host = g_getenv ("KUBERNETES_SERVICE_HOST");
  const char *port = g_getenv ("KUBERNETES_SERVICE_PORT");
  g_autoptr(CpKubeConfig) config = NULL;
  g_autofree char *token_path = NULL;
  g_autofree char *ca_path = NULL;
  g_autofree char *ns_path = NULL;
  g_autoptr(GError) io = NULL;

  if (sa_dir == NULL)
    sa_dir = DEFAULT_SA_DIR;
  if (host == NULL || *host == '\0' || port == NULL || *port == '\0')
    return g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                        "not running in a Kubernetes cluster: "
                        "KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set"), NULL;
  config = g_new0 (CpKubeConfig, 1);
  config->server = strchr (host, ':') != NULL
                     ? g_strdup_printf ("https://[%s]:%s", host, port)
                     : g_strdup_printf ("https://%s:%s", host, port);
  if (!check_server (config->server, error))
    return NULL;
  token_path = g_build_filename (sa_dir, "token", NULL);
  ca_path = g_build_filename (sa_dir, "ca.crt", NULL);
  ns_path = g_build_filename (sa_dir, "namespace", NULL);
  if (!g_file_get_contents (token_path, &config->token, NULL, &io) ||
      !g_file_get_contents (ca_path, &config->ca_pem, NULL, &io))
    return g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                        "in-cluster configuration: %s", io->message), NULL;
  g_strstrip (config->token);
  if (g_file_get_contents (ns_path, &config->namespace, NULL, NULL))
    g_strstrip (config->namespace);
  return g_steal_pointer (&config);
}
