/* test-go-codec.c: byte-level cross-check with Go's protobuf runtime
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every message of connectplugin.v1, connectplugin.health.v1 and kv.v1 is
 * filled, field by field from its protobuf-c descriptor, by the rule
 * cp-go-codec (cmd/cp-go-codec) applies with protoreflect: all fields set,
 * maps and repeated fields with two entries. Our binary and JSON encodings
 * must decode in Go to messages equal to Go's filled ones, and Go's
 * encodings must decode here to messages equal to ours. Decoded messages
 * are compared, not bytes (Go's JSON orders fields its own way).
 *
 *   test-go-codec CP_GO_CODEC
 */
#include <connectplugin.h>
#include <glib/gstdio.h>
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "kv.cp.h"

static const char *go_codec;

static GType
message_type (guint i)
{
  GType types[] = {
    CP_TYPE_REQUEST_CAPABILITY_REQUEST, CP_TYPE_REQUEST_CAPABILITY_RESPONSE, CP_TYPE_CAPABILITY_GRANT,
    CP_TYPE_GET_HEALTH_REQUEST, CP_TYPE_GET_HEALTH_RESPONSE, CP_TYPE_SHUTDOWN_REQUEST,
    CP_TYPE_SHUTDOWN_RESPONSE, CP_TYPE_HANDSHAKE_REQUEST, CP_TYPE_HANDSHAKE_RESPONSE,
    CP_TYPE_PLUGIN_INFO, CP_TYPE_CAPABILITY, CP_TYPE_SERVICE_DECLARATION,
    CP_TYPE_SERVICE_DEPENDENCY, CP_TYPE_HEALTH_CHECK_REQUEST, CP_TYPE_HEALTH_CHECK_RESPONSE,
    CP_TYPE_GET_PLUGIN_INFO_REQUEST, CP_TYPE_GET_PLUGIN_INFO_RESPONSE,
    CP_TYPE_SET_RUNTIME_IDENTITY_REQUEST, CP_TYPE_SET_RUNTIME_IDENTITY_RESPONSE,
    CP_TYPE_REPORT_HEALTH_REQUEST, CP_TYPE_REPORT_HEALTH_RESPONSE,
    CP_TYPE_REGISTER_SERVICE_REQUEST, CP_TYPE_REGISTER_SERVICE_RESPONSE,
    CP_TYPE_UNREGISTER_SERVICE_REQUEST, CP_TYPE_UNREGISTER_SERVICE_RESPONSE,
    CP_TYPE_DISCOVER_SERVICE_REQUEST, CP_TYPE_DISCOVER_SERVICE_RESPONSE,
    CP_TYPE_SERVICE_ENDPOINT, CP_TYPE_WATCH_SERVICE_REQUEST, CP_TYPE_WATCH_SERVICE_EVENT,
    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE, KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE,
    KV_TYPE_DELETE_REQUEST, KV_TYPE_DELETE_RESPONSE, KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT,
  };

  return i < G_N_ELEMENTS (types) ? types[i] : G_TYPE_INVALID;
}

/* ------------------------------------------------------------------ */
/* The fill rule (same as cp-go-codec's)                                */

static void fill (const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg);

static char *
str (const char *format, ...) G_GNUC_PRINTF (1, 2);

static char *
str (const char *format, ...)
{
  va_list args;
  g_autofree char *s = NULL;

  /* protobuf-c frees with its default allocator: malloc'd copies. */
  va_start (args, format);
  s = g_strdup_vprintf (format, args);
  va_end (args);
  return strdup (s);
}

static gboolean
is_map_entry (const ProtobufCMessageDescriptor *d)
{
  return g_str_has_suffix (d->name, "Entry") && d->n_fields == 2 &&
         g_str_equal (d->fields[0].name, "key") && g_str_equal (d->fields[1].name, "value");
}

static ProtobufCMessage *
new_filled (const ProtobufCMessageDescriptor *d)
{
  ProtobufCMessage *m = malloc (d->sizeof_message);

  protobuf_c_message_init (d, m);
  fill (d, m);
  return m;
}

static ProtobufCMessage *
new_entry (const ProtobufCMessageDescriptor *d,
           const char                       *key,
           const char                       *value)
{
  ProtobufCMessage *m = malloc (d->sizeof_message);

  protobuf_c_message_init (d, m);
  *(char **) ((char *) m + d->fields[0].offset) = strdup (key);
  *(char **) ((char *) m + d->fields[1].offset) = strdup (value);
  return m;
}

static void
fill (const ProtobufCMessageDescriptor *desc,
      ProtobufCMessage                 *msg)
{
  for (guint i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];
      char *member = (char *) msg + f->offset;

      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          size_t *count = (size_t *) ((char *) msg + f->quantifier_offset);
          const ProtobufCMessageDescriptor *md = f->descriptor;

          *count = 2;
          if (f->type == PROTOBUF_C_TYPE_STRING)
            {
              char **v = malloc (2 * sizeof (char *));
              v[0] = str ("%s-0", f->name);
              v[1] = str ("%s-1-ü", f->name);
              *(char ***) member = v;
            }
          else if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry (md))
            {
              ProtobufCMessage **v = malloc (2 * sizeof (gpointer));
              g_autofree char *a = g_strdup_printf ("%s-a", f->name);
              g_autofree char *b = g_strdup_printf ("%s-b-ü", f->name);
              v[0] = new_entry (md, a, "1");
              v[1] = new_entry (md, b, "two");
              *(ProtobufCMessage ***) member = v;
            }
          else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            {
              ProtobufCMessage **v = malloc (2 * sizeof (gpointer));
              v[0] = new_filled (md);
              v[1] = new_filled (md);
              *(ProtobufCMessage ***) member = v;
            }
          else
            g_error ("%s.%s: repeated kind not in the fill rule", desc->name, f->name);
          continue;
        }
      if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        *(protobuf_c_boolean *) ((char *) msg + f->quantifier_offset) = TRUE;
      switch (f->type)
        {
        case PROTOBUF_C_TYPE_STRING:
          *(char **) member = str ("%s-ü-%u", f->name, f->id);
          break;
        case PROTOBUF_C_TYPE_INT32:
          *(int32_t *) member = (int32_t) f->id * 100003 * (f->id % 2 ? -1 : 1);
          break;
        case PROTOBUF_C_TYPE_BOOL:
          *(protobuf_c_boolean *) member = TRUE;
          break;
        case PROTOBUF_C_TYPE_BYTES:
          {
            ProtobufCBinaryData *b = (ProtobufCBinaryData *) member;
            uint8_t v[] = { 0xff, 0x00, (uint8_t) f->id, 0x80, 0xfe };
            b->len = sizeof v;
            b->data = malloc (sizeof v);
            memcpy (b->data, v, sizeof v);
          }
          break;
        case PROTOBUF_C_TYPE_ENUM:
          {
            const ProtobufCEnumDescriptor *ed = f->descriptor;
            int max = ed->values[0].value;
            for (guint j = 1; j < ed->n_values; j++)
              max = MAX (max, ed->values[j].value);
            *(int *) member = max;
          }
          break;
        case PROTOBUF_C_TYPE_MESSAGE:
          *(ProtobufCMessage **) member = new_filled (f->descriptor);
          break;
        default:
          g_error ("%s.%s: kind not in the fill rule", desc->name, f->name);
        }
    }
}

static CpMessage *
filled_message (GType type)
{
  g_autoptr(GTypeClass) klass = g_type_class_ref (type);
  const ProtobufCMessageDescriptor *d = cp_message_class_get_descriptor (CP_MESSAGE_CLASS (klass));

  return cp_message_new_take (type, new_filled (d));
}

/* Map fields are unordered (Go writes them in random order) but
 * cp_message_equal() compares entries in order: sort them by key, in
 * place, before comparing. */
static int
compare_entries (const void *a,
                 const void *b)
{
  const ProtobufCMessage *ea = *(ProtobufCMessage * const *) a;
  const ProtobufCMessage *eb = *(ProtobufCMessage * const *) b;
  size_t off = ea->descriptor->fields[0].offset;

  return strcmp (*(char * const *) ((const char *) ea + off), *(char * const *) ((const char *) eb + off));
}

static void
sort_maps (ProtobufCMessage *msg)
{
  const ProtobufCMessageDescriptor *desc = msg->descriptor;

  for (guint i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];
      char *member = (char *) msg + f->offset;

      if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        continue;
      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          size_t n = *(size_t *) ((char *) msg + f->quantifier_offset);
          ProtobufCMessage **v = *(ProtobufCMessage ***) member;

          if (is_map_entry (f->descriptor))
            qsort (v, n, sizeof (gpointer), compare_entries);
          else
            for (size_t j = 0; j < n; j++)
              sort_maps (v[j]);
        }
      else if (*(ProtobufCMessage **) member != NULL)
        sort_maps (*(ProtobufCMessage **) member);
    }
}

static gboolean
messages_equal (CpMessage *a,
                CpMessage *b)
{
  sort_maps (cp_message_get_c_message (a));
  sort_maps (cp_message_get_c_message (b));
  return cp_message_equal (a, b);
}

/* ------------------------------------------------------------------ */

static char *
run_go_codec (const char *command,
              const char *dir,
              int        *status)
{
  g_autoptr(GError) error = NULL;
  char *out = NULL;
  const char *argv[] = { go_codec, command, dir, NULL };

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, status, &error);
  g_assert_no_error (error);
  return out;
}

static void
print_lines (const char *out)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (*lines[i])
      g_print ("# %s\n", lines[i]);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

/* Go's list of messages is ours: nothing left out on either side. */
static void
test_same_messages (void)
{
  int status = 0;
  g_autofree char *out = run_go_codec ("list", NULL, &status);
  g_autoptr(GString) ours = g_string_new (NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *joined = NULL;
  g_auto(GStrv) go_names = NULL;

  g_assert_true (g_spawn_check_wait_status (status, NULL));
  for (guint i = 0; message_type (i) != G_TYPE_INVALID; i++)
    {
      g_autoptr(CpMessage) m = cp_message_new (message_type (i));
      g_ptr_array_add (names, g_strdup (cp_message_get_full_name (m)));
    }
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  joined = g_strjoinv ("\n", (char **) names->pdata);
  g_string_append_printf (ours, "%s\n", joined);
  g_assert_cmpstr (ours->str, ==, out);
  go_names = g_strsplit (g_strstrip (out), "\n", -1);
  g_assert_cmpuint (g_strv_length (go_names), ==, names->len - 1);
}

static void
test_c_to_go (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cp-go-codec-XXXXXX", &error);
  g_autofree char *out = NULL;
  int status = 0;

  g_assert_no_error (error);
  for (guint i = 0; message_type (i) != G_TYPE_INVALID; i++)
    {
      g_autoptr(CpMessage) m = filled_message (message_type (i));
      const char *name = cp_message_get_full_name (m);
      g_autoptr(GBytes) bin = cp_message_serialize (m, CP_CODEC_PROTO, &error);
      g_autoptr(GBytes) json = NULL;
      g_autofree char *bin_path = g_strdup_printf ("%s/%s.c.bin", dir, name);
      g_autofree char *json_path = g_strdup_printf ("%s/%s.c.json", dir, name);

      g_assert_no_error (error);
      json = cp_message_serialize (m, CP_CODEC_JSON, &error);
      g_assert_no_error (error);
      g_file_set_contents (bin_path, g_bytes_get_data (bin, NULL), g_bytes_get_size (bin), &error);
      g_assert_no_error (error);
      g_file_set_contents (json_path, g_bytes_get_data (json, NULL), g_bytes_get_size (json), &error);
      g_assert_no_error (error);
    }
  out = run_go_codec ("check", dir, &status);
  print_lines (out);
  g_assert_null (strstr (out, "FAIL"));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  /* Two lines (bin, json) per message. */
  for (guint i = 0; message_type (i) != G_TYPE_INVALID; i++)
    {
      g_autoptr(CpMessage) m = cp_message_new (message_type (i));
      g_autofree char *line = g_strdup_printf ("ok   C→Go json %s\n", cp_message_get_full_name (m));
      g_assert_nonnull (strstr (out, line));
    }
  {
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    const char *f;
    while (d && (f = g_dir_read_name (d)))
      {
        g_autofree char *p = g_build_filename (dir, f, NULL);
        g_unlink (p);
      }
    g_rmdir (dir);
  }
}

static void
test_go_to_c (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cp-go-codec-XXXXXX", &error);
  g_autofree char *out = NULL;
  int status = 0;

  g_assert_no_error (error);
  out = run_go_codec ("emit", dir, &status);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  for (guint i = 0; message_type (i) != G_TYPE_INVALID; i++)
    {
      GType type = message_type (i);
      g_autoptr(CpMessage) want = filled_message (type);
      const char *name = cp_message_get_full_name (want);
      struct { const char *ext; CpCodec codec; } formats[] = {
        { "bin", CP_CODEC_PROTO }, { "json", CP_CODEC_JSON },
      };

      for (guint k = 0; k < G_N_ELEMENTS (formats); k++)
        {
          g_autofree char *path = g_strdup_printf ("%s/%s.go.%s", dir, name, formats[k].ext);
          g_autofree char *data = NULL;
          gsize len = 0;
          g_autoptr(GBytes) bytes = NULL;
          g_autoptr(CpMessage) got = NULL;

          g_file_get_contents (path, &data, &len, &error);
          g_assert_no_error (error);
          bytes = g_bytes_new (data, len);
          got = cp_message_new_from_bytes (type, formats[k].codec, bytes, &error);
          g_assert_no_error (error);
          if (!messages_equal (got, want))
            {
              g_autofree char *a = cp_message_to_json (got);
              g_autofree char *b = cp_message_to_json (want);
              g_error ("Go→C %s %s: decoded %s, want %s", formats[k].ext, name, a, b);
            }
          g_print ("# ok   Go→C %-4s %s\n", formats[k].ext, name);
          g_unlink (path);
        }
    }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    {
      g_printerr ("usage: test-go-codec CP_GO_CODEC\n");
      return 2;
    }
  go_codec = argv[1];
  g_test_add_func ("/interop/go/codec/same-messages", test_same_messages);
  g_test_add_func ("/interop/go/codec/c-to-go", test_c_to_go);
  g_test_add_func ("/interop/go/codec/go-to-c", test_go_to_c);
  return g_test_run ();
}
