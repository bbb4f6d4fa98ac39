/* test-message.c: CpMessage, the registry, field access, built-in WKTs
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-message.h"
#include "cp-well-known.h"
#include "cp-codec-private.h"
#include "cp-proto-field-private.h"
#include "cp-error.h"
#include "test_all.pb-c.h"
#include "struct.pb-c.h"

#define STATIC_BYTES(s) g_bytes_new_static (s, sizeof (s) - 1)

/* Hand-written subclasses, the way generated code will look. */

#define TEST_TYPE_ALL (test_all_get_type ())
G_DECLARE_FINAL_TYPE (TestAll, test_all, TEST, ALL, CpMessage)
struct _TestAll { CpMessage parent_instance; };
G_DEFINE_FINAL_TYPE (TestAll, test_all, CP_TYPE_MESSAGE)
static void test_all_class_init (TestAllClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &cptest__v1__test_all__descriptor);
}
static void test_all_init (TestAll *self) { }

#define TEST_TYPE_NESTED (test_nested_get_type ())
G_DECLARE_FINAL_TYPE (TestNested, test_nested, TEST, NESTED, CpMessage)
struct _TestNested { CpMessage parent_instance; };
G_DEFINE_FINAL_TYPE (TestNested, test_nested, CP_TYPE_MESSAGE)
static void test_nested_class_init (TestNestedClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &cptest__v1__nested__descriptor);
}
static void test_nested_init (TestNested *self) { }

static Cptest__V1__TestAll *
c_all (gpointer message)
{
  return cp_message_get_c_message (CP_MESSAGE (message));
}

static void
test_new (void)
{
  g_autoptr(CpMessage) m = cp_message_new (TEST_TYPE_ALL);
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *json = NULL;
  Cptest__V1__TestAll *c;

  g_assert_true (TEST_IS_ALL (m));
  g_assert_cmpstr (cp_message_get_full_name (m), ==, "cptest.v1.TestAll");
  c = c_all (m);
  g_assert_nonnull (c);
  g_assert_true (c->base.descriptor == &cptest__v1__test_all__descriptor);
  g_assert_cmpstr (c->f_string, ==, "");
  bytes = cp_message_to_bytes (m);
  g_assert_cmpuint (g_bytes_get_size (bytes), ==, 0);
  json = cp_message_to_json (m);
  g_assert_cmpstr (json, ==, "{}");

  /* g_object_new works as well (bindings construct that way) */
  {
    g_autoptr(TestAll) o = g_object_new (TEST_TYPE_ALL, NULL);
    g_assert_nonnull (c_all (o));
  }
}

static void
test_registry (void)
{
  GType nested;

  g_assert_true (cp_message_type_from_name ("cptest.v1.TestAll") == TEST_TYPE_ALL);

  /* a class that was never instantiated is found as well */
  nested = TEST_TYPE_NESTED;
  g_assert_true (cp_message_type_from_name ("cptest.v1.Nested") == nested);

  g_assert_true (cp_message_type_from_name ("google.protobuf.Empty") == CP_TYPE_EMPTY);
  g_assert_true (cp_message_type_from_name ("google.protobuf.StringValue") == CP_TYPE_STRING_VALUE);
  g_assert_true (cp_message_type_from_name ("google.protobuf.BytesValue") == CP_TYPE_BYTES_VALUE);
  g_assert_true (cp_message_type_from_name ("google.protobuf.Int32Value") == CP_TYPE_INT32_VALUE);
  g_assert_true (cp_message_type_from_name ("google.protobuf.Int64Value") == CP_TYPE_INT64_VALUE);
  g_assert_true (cp_message_type_from_name ("google.protobuf.BoolValue") == CP_TYPE_BOOL_VALUE);
  g_assert_true (cp_message_type_from_name ("cptest.v1.Recursive") == G_TYPE_INVALID);
  g_assert_true (cp_message_type_from_name ("") == G_TYPE_INVALID);
}

static gpointer
lookup_thread (gpointer data)
{
  for (guint i = 0; i < 1000; i++)
    if (cp_message_type_from_name ("google.protobuf.BoolValue") != CP_TYPE_BOOL_VALUE)
      return GINT_TO_POINTER (FALSE);
  return GINT_TO_POINTER (TRUE);
}

static void
test_registry_threads (void)
{
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("lookup", lookup_thread, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_true (GPOINTER_TO_INT (g_thread_join (threads[i])));
}

static void
set_ok (CpMessage *m, const char *name, const GValue *value)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (cp_message_set_field (m, name, value, &error));
  g_assert_no_error (error);
}

static void
set_fails (CpMessage *m, const char *name, const GValue *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) before = cp_message_to_bytes (m);
  g_autoptr(GBytes) after = NULL;

  g_assert_false (cp_message_set_field (m, name, value, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  after = cp_message_to_bytes (m);
  g_assert_true (g_bytes_equal (before, after));
}

static void
test_set_get_scalars (void)
{
  g_autoptr(CpMessage) m = cp_message_new (TEST_TYPE_ALL);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) v = G_VALUE_INIT;
  Cptest__V1__TestAll *c = c_all (m);
  g_autofree char *json = NULL;

  g_value_init (&v, G_TYPE_INT);
  g_value_set_int (&v, -5);
  set_ok (m, "f_int32", &v);
  set_ok (m, "fSint32", &v);           /* JSON name */
  set_ok (m, "f_int64", &v);           /* widened */
  set_ok (m, "f_double", &v);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_UINT64);
  g_value_set_uint64 (&v, G_MAXUINT64);
  set_ok (m, "fUint64", &v);
  set_fails (m, "f_int64", &v);       /* does not fit */
  set_fails (m, "f_uint32", &v);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, 7.0);
  set_ok (m, "f_fixed32", &v);         /* integral double is fine */
  g_value_set_double (&v, 7.5);
  set_fails (m, "f_fixed32", &v);
  set_ok (m, "f_float", &v);
  g_value_set_double (&v, 1e300);
  set_fails (m, "f_float", &v);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_BOOLEAN);
  g_value_set_boolean (&v, TRUE);
  set_ok (m, "f_bool", &v);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, "h\xc3\xa9");
  set_ok (m, "f_string", &v);
  g_value_set_string (&v, "COLOR_BLUE");
  set_ok (m, "f_enum", &v);           /* enum by name */
  g_value_set_string (&v, "NOT_A_COLOR");
  set_fails (m, "f_enum", &v);
  g_value_set_string (&v, "\xff");
  set_fails (m, "f_string", &v);
  set_fails (m, "f_int32", &v);       /* wrong type */
  set_fails (m, "no_such_field", &v);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_BYTES);
  g_value_take_boxed (&v, g_bytes_new ("\x00\x01", 2));
  set_ok (m, "f_bytes", &v);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_INT);
  g_value_set_int (&v, 9);
  set_ok (m, "o_int32", &v);          /* selects the oneof member */
  g_value_unset (&v);

  /* the C struct saw all of it */
  g_assert_cmpint (c->f_int32, ==, -5);
  g_assert_cmpint (c->f_sint32, ==, -5);
  g_assert_cmpint (c->f_int64, ==, -5);
  g_assert_cmpuint (c->f_uint64, ==, G_MAXUINT64);
  g_assert_cmpuint (c->f_fixed32, ==, 7);
  g_assert_cmpfloat (c->f_float, ==, 7.5f);
  g_assert_true (c->f_bool);
  g_assert_cmpstr (c->f_string, ==, "h\xc3\xa9");
  g_assert_cmpint (c->f_enum, ==, CPTEST__V1__COLOR__COLOR_BLUE);
  g_assert_cmpuint (c->f_bytes.len, ==, 2);
  g_assert_cmpint (c->choice_case, ==, CPTEST__V1__TEST_ALL__CHOICE_O_INT32);
  g_assert_cmpint (c->o_int32, ==, 9);

  json = cp_message_to_json (m);
  g_assert_cmpstr (json, ==,
                   "{\"fInt32\":-5,\"fInt64\":\"-5\",\"fUint64\":\"18446744073709551615\",\"fSint32\":-5,"
                   "\"fFixed32\":7,\"fFloat\":7.5,\"fDouble\":-5,\"fBool\":true,\"fString\":\"h\xc3\xa9\","
                   "\"fBytes\":\"AAE=\",\"fEnum\":\"COLOR_BLUE\",\"oInt32\":9}");

  /* and reading back */
  g_assert_true (cp_message_get_field (m, "fUint64", &v, &error));
  g_assert_no_error (error);
  g_assert_true (G_VALUE_HOLDS_UINT64 (&v));
  g_assert_cmpuint (g_value_get_uint64 (&v), ==, G_MAXUINT64);
  g_assert_true (cp_message_get_field (m, "f_int32", &v, &error));   /* re-used GValue */
  g_assert_true (G_VALUE_HOLDS_INT (&v));
  g_assert_cmpint (g_value_get_int (&v), ==, -5);
  g_assert_true (cp_message_get_field (m, "f_string", &v, &error));
  g_assert_cmpstr (g_value_get_string (&v), ==, "h\xc3\xa9");
  g_assert_true (cp_message_get_field (m, "f_bytes", &v, &error));
  g_assert_true (G_VALUE_HOLDS (&v, G_TYPE_BYTES));
  g_assert_cmpmem (g_bytes_get_data (g_value_get_boxed (&v), NULL), 2, "\x00\x01", 2);
  g_assert_true (cp_message_get_field (m, "f_enum", &v, &error));
  g_assert_cmpint (g_value_get_int (&v), ==, CPTEST__V1__COLOR__COLOR_BLUE);
  g_assert_true (cp_message_get_field (m, "f_float", &v, &error));
  g_assert_cmpfloat (g_value_get_float (&v), ==, 7.5f);
  g_assert_true (cp_message_get_field (m, "f_bool", &v, &error));
  g_assert_true (g_value_get_boolean (&v));
  g_assert_true (cp_message_get_field (m, "o_string", &v, &error));  /* not the selected member */
  g_assert_cmpstr (g_value_get_string (&v), ==, "");
  g_assert_true (cp_message_get_field (m, "o_int32", &v, &error));
  g_assert_cmpint (g_value_get_int (&v), ==, 9);
  g_assert_no_error (error);

  g_assert_false (cp_message_get_field (m, "nope", &v, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (cp_message_get_field (m, "m_string_string", &v, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
}

static void
test_set_get_compound (void)
{
  g_autoptr(CpMessage) m = cp_message_new (TEST_TYPE_ALL);
  g_autoptr(CpMessage) nested = cp_message_new (TEST_TYPE_NESTED);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) v = G_VALUE_INIT;
  const char *strv[] = { "a", "", "c", NULL };
  Cptest__V1__TestAll *c = c_all (m);
  CpMessage *got;

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, "inner");
  set_ok (nested, "name", &v);
  g_value_unset (&v);

  /* message fields take a copy */
  g_value_init (&v, CP_TYPE_MESSAGE);
  g_value_set_object (&v, nested);
  set_ok (m, "f_nested", &v);
  set_ok (m, "oNested", &v);
  g_assert_nonnull (c->f_nested);
  g_assert_true ((gpointer) c->f_nested != cp_message_get_c_message (nested));
  g_assert_cmpstr (c->f_nested->name, ==, "inner");
  g_assert_cmpint (c->choice_case, ==, CPTEST__V1__TEST_ALL__CHOICE_O_NESTED);

  /* a message of the wrong protobuf type is refused */
  g_value_set_object (&v, m);
  set_fails (m, "f_nested", &v);
  g_value_unset (&v);

  g_assert_true (cp_message_get_field (m, "fNested", &v, &error));
  g_assert_no_error (error);
  g_assert_true (G_VALUE_HOLDS (&v, TEST_TYPE_NESTED));
  got = g_value_get_object (&v);
  g_assert_true (cp_message_equal (got, nested));
  g_assert_true (got != nested);

  /* an unset message field reads as NULL; clearing with NULL */
  g_value_unset (&v);
  g_value_init (&v, TEST_TYPE_NESTED);
  set_ok (m, "f_nested", &v);
  g_assert_null (c->f_nested);
  g_assert_true (cp_message_get_field (m, "f_nested", &v, &error));
  g_assert_null (g_value_get_object (&v));
  g_value_unset (&v);

  /* no class registered for cptest.v1.Recursive */
  g_assert_false (cp_message_get_field (m, "f_recursive", &v, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* repeated string as GStrv */
  g_value_init (&v, G_TYPE_STRV);
  g_value_set_boxed (&v, strv);
  set_ok (m, "r_string", &v);
  set_ok (m, "r_string", &v);  /* replaces */
  g_value_unset (&v);
  g_assert_cmpuint (c->n_r_string, ==, 3);
  g_assert_true (cp_message_get_field (m, "rString", &v, &error));
  g_assert_no_error (error);
  g_assert_cmpstrv (g_value_get_boxed (&v), strv);
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_INT);
  set_fails (m, "r_int32", &v);
  set_fails (m, "m_string_string", &v);
}

static void
test_serialize_parse (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) m = NULL;
  g_autoptr(CpMessage) back = NULL;
  g_autoptr(GBytes) json = STATIC_BYTES ("{\"fInt64\":\"42\",\"fNested\":{\"id\":3},\"rString\":[\"x\"]}");
  g_autoptr(GBytes) bin = NULL, json2 = NULL, garbage = STATIC_BYTES ("\xff\xff");
  g_autoptr(GBytes) before = NULL, after = NULL;
  g_autoptr(GBytes) small = STATIC_BYTES ("{\"fInt32\":1}");

  m = cp_message_new_from_bytes (TEST_TYPE_ALL, CP_CODEC_JSON, json, &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_ALL (m));
  g_assert_cmpint (c_all (m)->f_int64, ==, 42);
  g_assert_cmpint (c_all (m)->f_nested->id, ==, 3);

  bin = cp_message_serialize (m, CP_CODEC_PROTO, &error);
  g_assert_no_error (error);
  back = cp_message_new_from_bytes (TEST_TYPE_ALL, CP_CODEC_PROTO, bin, &error);
  g_assert_no_error (error);
  g_assert_true (cp_message_equal (m, back));
  json2 = cp_message_serialize (back, CP_CODEC_JSON, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (json, json2));

  /* parse replaces the contents; on failure nothing changes */
  g_assert_true (cp_message_parse (back, CP_CODEC_JSON, small, &error));
  g_assert_no_error (error);
  g_assert_cmpint (c_all (back)->f_int32, ==, 1);
  g_assert_cmpint (c_all (back)->f_int64, ==, 0);
  before = cp_message_to_bytes (back);
  g_assert_false (cp_message_parse (back, CP_CODEC_PROTO, garbage, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  after = cp_message_to_bytes (back);
  g_assert_true (g_bytes_equal (before, after));

  g_assert_null (cp_message_new_from_bytes (TEST_TYPE_ALL, CP_CODEC_JSON, garbage, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
}

static void
test_copy_equal (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) json = STATIC_BYTES ("{\"fString\":\"s\",\"mInt32Nested\":{\"1\":{\"name\":\"n\"}}}");
  g_autoptr(CpMessage) a = cp_message_new_from_bytes (TEST_TYPE_ALL, CP_CODEC_JSON, json, &error);
  g_autoptr(CpMessage) b = NULL;
  g_autoptr(CpMessage) nested = cp_message_new (TEST_TYPE_NESTED);
  g_autoptr(CpMessage) empty_all = cp_message_new (TEST_TYPE_ALL);

  g_assert_no_error (error);
  b = cp_message_copy (a);
  g_assert_true (TEST_IS_ALL (b));
  g_assert_true (b != a);
  g_assert_true (cp_message_get_c_message (b) != cp_message_get_c_message (a));
  g_assert_true (cp_message_equal (a, b));
  g_assert_true (cp_message_equal (a, a));

  /* deep: changing the copy leaves the original alone */
  g_free (c_all (b)->m_int32_nested[0]->value->name);
  c_all (b)->m_int32_nested[0]->value->name = g_strdup ("changed");
  g_assert_cmpstr (c_all (a)->m_int32_nested[0]->value->name, ==, "n");
  g_assert_false (cp_message_equal (a, b));

  /* different types are never equal, even when both encode to nothing */
  g_assert_false (cp_message_equal (nested, empty_all));
}

static void
test_take (void)
{
  Cptest__V1__Nested *c = (Cptest__V1__Nested *) cp_proto_message_new (&cptest__v1__nested__descriptor);
  Cptest__V1__Nested *c2 = (Cptest__V1__Nested *) cp_proto_message_new (&cptest__v1__nested__descriptor);
  g_autoptr(CpMessage) m = NULL;
  g_autofree char *json = NULL, *json2 = NULL;

  c->id = 12;
  m = cp_message_new_take (TEST_TYPE_NESTED, c);
  g_assert_true (cp_message_get_c_message (m) == c);
  json = cp_message_to_json (m);
  g_assert_cmpstr (json, ==, "{\"id\":12}");

  c2->name = g_strdup ("two");
  cp_message_take_c_message (m, c2);
  g_assert_true (cp_message_get_c_message (m) == c2);
  json2 = cp_message_to_json (m);
  g_assert_cmpstr (json2, ==, "{\"name\":\"two\"}");
}

static void
check_codecs (CpMessage *m, const char *expected_json)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = cp_message_to_json (m);
  g_autoptr(GBytes) json_bytes = NULL, bin = NULL;
  g_autoptr(CpMessage) from_json = NULL, from_bin = NULL;

  g_assert_cmpstr (json, ==, expected_json);
  json_bytes = g_bytes_new (json, strlen (json));
  from_json = cp_message_new_from_bytes (G_OBJECT_TYPE (m), CP_CODEC_JSON, json_bytes, &error);
  g_assert_no_error (error);
  g_assert_true (cp_message_equal (m, from_json));
  bin = cp_message_to_bytes (m);
  from_bin = cp_message_new_from_bytes (G_OBJECT_TYPE (m), CP_CODEC_PROTO, bin, &error);
  g_assert_no_error (error);
  g_assert_true (cp_message_equal (m, from_bin));
}

static void
test_well_known (void)
{
  g_autoptr(CpEmpty) empty = cp_empty_new ();
  g_autoptr(CpStringValue) sv = cp_string_value_new ("h\"i");
  g_autoptr(CpBytesValue) bv = NULL;
  g_autoptr(CpInt32Value) i32 = cp_int32_value_new (-3);
  g_autoptr(CpInt64Value) i64 = cp_int64_value_new (G_MAXINT64);
  g_autoptr(CpBoolValue) bo = cp_bool_value_new (TRUE);
  g_autoptr(GBytes) data = STATIC_BYTES ("\xfb\xff");
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) v = G_VALUE_INIT;

  bv = cp_bytes_value_new (data);

  g_assert_cmpstr (cp_message_get_full_name (CP_MESSAGE (empty)), ==, "google.protobuf.Empty");
  check_codecs (CP_MESSAGE (empty), "{}");
  check_codecs (CP_MESSAGE (sv), "\"h\\\"i\"");
  check_codecs (CP_MESSAGE (bv), "\"+/8=\"");
  check_codecs (CP_MESSAGE (i32), "-3");
  check_codecs (CP_MESSAGE (i64), "\"9223372036854775807\"");
  check_codecs (CP_MESSAGE (bo), "true");

  g_assert_cmpstr (cp_string_value_get_value (sv), ==, "h\"i");
  cp_string_value_set_value (sv, NULL);
  g_assert_cmpstr (cp_string_value_get_value (sv), ==, "");
  check_codecs (CP_MESSAGE (sv), "\"\"");
  got = cp_bytes_value_get_value (bv);
  g_assert_true (g_bytes_equal (got, data));
  g_assert_cmpint (cp_int32_value_get_value (i32), ==, -3);
  g_assert_cmpint (cp_int64_value_get_value (i64), ==, G_MAXINT64);
  g_assert_true (cp_bool_value_get_value (bo));
  cp_bool_value_set_value (bo, FALSE);
  check_codecs (CP_MESSAGE (bo), "false");

  /* field access works on them too */
  g_assert_true (cp_message_get_field (CP_MESSAGE (i64), "value", &v, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&v), ==, G_MAXINT64);

  /* wrapper JSON input: bare values, liberal forms */
  {
    g_autoptr(GBytes) in = STATIC_BYTES ("\"1e3\"");
    g_autoptr(CpMessage) m = cp_message_new_from_bytes (CP_TYPE_INT32_VALUE, CP_CODEC_JSON, in, &error);
    g_assert_no_error (error);
    g_assert_cmpint (cp_int32_value_get_value (CP_INT32_VALUE (m)), ==, 1000);
  }
  {
    g_autoptr(GBytes) in = STATIC_BYTES ("{\"value\":\"x\"}");
    g_autoptr(CpMessage) m = cp_message_new_from_bytes (CP_TYPE_STRING_VALUE, CP_CODEC_JSON, in, &error);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_assert_null (m);
    g_clear_error (&error);
  }
  {
    g_autoptr(GBytes) in = STATIC_BYTES ("[]");
    g_autoptr(CpMessage) m = cp_message_new_from_bytes (CP_TYPE_EMPTY, CP_CODEC_JSON, in, &error);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_assert_null (m);
  }
}

static char *
json_of (gpointer message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = cp_message_serialize (CP_MESSAGE (message), CP_CODEC_JSON, &error);

  g_assert_no_error (error);
  return g_strndup (g_bytes_get_data (data, NULL), g_bytes_get_size (data));
}

static CpMessage *
from_json (GType type, const char *text, GError **error)
{
  g_autoptr(GBytes) data = g_bytes_new (text, strlen (text));

  return cp_message_new_from_bytes (type, CP_CODEC_JSON, data, error);
}

/* Reverses the order of a repeated message field (map entries). */
static void
reverse_entries (gpointer *items, gsize n)
{
  for (gsize i = 0; i < n / 2; i++)
    {
      gpointer tmp = items[i];

      items[i] = items[n - 1 - i];
      items[n - 1 - i] = tmp;
    }
}

static gboolean
same_encoding (CpMessage *a, CpMessage *b)
{
  g_autoptr(GBytes) ba = cp_message_to_bytes (a);
  g_autoptr(GBytes) bb = cp_message_to_bytes (b);

  return g_bytes_equal (ba, bb);
}

/* Map entries are unordered (Go writes them in random order): equal maps
 * in another order are equal messages; a different value is not. */
static void
test_equal_map_order (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) a = from_json (TEST_TYPE_ALL,
                                      "{\"mStringString\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},"
                                      "\"mInt32Nested\":{\"-1\":{\"id\":1},\"7\":{\"name\":\"n\"}},"
                                      "\"mBoolInt64\":{\"true\":\"1\",\"false\":\"2\"},"
                                      "\"mUint64Enum\":{\"18446744073709551615\":\"COLOR_RED\",\"1\":\"COLOR_BLUE\"},"
                                      "\"rString\":[\"x\",\"y\"]}", &error);
  g_autoptr(CpMessage) b = NULL;
  Cptest__V1__TestAll *cb;

  g_assert_no_error (error);
  b = cp_message_copy (a);
  g_assert_true (same_encoding (a, b));
  cb = c_all (b);
  g_assert_cmpuint (cb->n_m_string_string, ==, 3);
  reverse_entries ((gpointer *) cb->m_string_string, cb->n_m_string_string);
  reverse_entries ((gpointer *) cb->m_int32_nested, cb->n_m_int32_nested);
  reverse_entries ((gpointer *) cb->m_bool_int64, cb->n_m_bool_int64);
  reverse_entries ((gpointer *) cb->m_uint64_enum, cb->n_m_uint64_enum);
  g_assert_false (same_encoding (a, b));   /* the order shows in the bytes */
  g_assert_true (cp_message_equal (a, b));
  g_assert_true (cp_message_equal (b, a));
  /* comparing did not reorder either message */
  g_assert_cmpstr (cb->m_string_string[0]->key, ==, "c");
  g_assert_cmpstr (c_all (a)->m_string_string[0]->key, ==, "a");

  /* a different value under a key is a difference */
  g_free (cb->m_string_string[1]->value);
  cb->m_string_string[1]->value = g_strdup ("changed");
  g_assert_false (cp_message_equal (a, b));
  g_free (cb->m_string_string[1]->value);
  cb->m_string_string[1]->value = g_strdup ("2");
  g_assert_true (cp_message_equal (a, b));
  cb->m_int32_nested[0]->value->id = 99;
  g_assert_false (cp_message_equal (a, b));
  cb->m_int32_nested[0]->value->id = 0;
  g_assert_true (cp_message_equal (a, b));

  /* other repeated fields keep their order */
  reverse_entries ((gpointer *) cb->r_string, cb->n_r_string);
  g_assert_false (cp_message_equal (a, b));
}

/* A repeated key counts once, with the last value, as when parsing; maps
 * nested in map values, oneofs and lists compare as unordered too. */
static void
test_equal_map_duplicates_nested (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) first = from_json (TEST_TYPE_ALL, "{\"mStringString\":{\"k\":\"1\",\"z\":\"z\"}}", &error);
  g_autoptr(CpMessage) second = from_json (TEST_TYPE_ALL, "{\"mStringString\":{\"k\":\"2\"}}", &error);
  g_autoptr(CpMessage) merged_expected = from_json (TEST_TYPE_ALL, "{\"mStringString\":{\"z\":\"z\",\"k\":\"2\"}}", &error);
  g_autoptr(CpMessage) merged = NULL;
  g_autoptr(GBytes) b1 = cp_message_to_bytes (first);
  g_autoptr(GBytes) b2 = cp_message_to_bytes (second);
  g_autoptr(GByteArray) cat = g_byte_array_new ();
  g_autoptr(GBytes) cat_bytes = NULL;
  g_autoptr(CpMessage) st = NULL;
  g_autoptr(CpMessage) st2 = NULL;
  Google__Protobuf__Struct *c2;
  Google__Protobuf__Struct *inner;
  Google__Protobuf__ListValue *list = NULL;

  g_assert_no_error (error);
  /* concatenated encodings merge: k appears twice, "1" then "2" */
  g_byte_array_append (cat, g_bytes_get_data (b1, NULL), g_bytes_get_size (b1));
  g_byte_array_append (cat, g_bytes_get_data (b2, NULL), g_bytes_get_size (b2));
  cat_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&cat));
  merged = cp_message_new_from_bytes (TEST_TYPE_ALL, CP_CODEC_PROTO, cat_bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (c_all (merged)->n_m_string_string, ==, 3);
  g_assert_true (cp_message_equal (merged, merged_expected));
  g_assert_true (cp_message_equal (merged_expected, merged));
  g_assert_false (cp_message_equal (merged, first));
  g_assert_cmpuint (c_all (merged)->n_m_string_string, ==, 3);

  /* Struct in a list in a Struct: reorder only the innermost map */
  st = from_json (CP_TYPE_STRUCT, "{\"a\":1,\"l\":[{\"x\":1,\"y\":{\"p\":true,\"q\":false}}]}", &error);
  g_assert_no_error (error);
  st2 = cp_message_copy (st);
  c2 = cp_message_get_c_message (st2);
  for (gsize i = 0; i < c2->n_fields; i++)
    if (g_str_equal (c2->fields[i]->key, "l"))
      list = c2->fields[i]->value->list_value;
  g_assert_nonnull (list);
  inner = list->values[0]->struct_value;
  g_assert_cmpuint (inner->n_fields, ==, 2);
  reverse_entries ((gpointer *) inner->fields, inner->n_fields);
  g_assert_false (same_encoding (st, st2));
  g_assert_true (cp_message_equal (st, st2));
  /* and the map inside that map's value */
  for (gsize i = 0; i < inner->n_fields; i++)
    if (g_str_equal (inner->fields[i]->key, "y"))
      {
        Google__Protobuf__Struct *y = inner->fields[i]->value->struct_value;

        reverse_entries ((gpointer *) y->fields, y->n_fields);
        g_assert_true (cp_message_equal (st, st2));
        y->fields[0]->value->bool_value = !y->fields[0]->value->bool_value;
        g_assert_false (cp_message_equal (st, st2));
      }
}

static void
test_any (void)
{
  g_autoptr(TestNested) nested = TEST_NESTED (cp_message_new (TEST_TYPE_NESTED));
  g_autoptr(CpAny) any = NULL;
  g_autoptr(CpMessage) back = NULL;
  g_autoptr(CpMessage) parsed = NULL;
  g_autoptr(CpMessage) unpacked = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  Cptest__V1__Nested *c = cp_message_get_c_message (CP_MESSAGE (nested));

  c->id = 7;
  c->name = g_strdup ("seven");
  any = cp_any_pack (CP_MESSAGE (nested), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cp_any_get_type_url (any), ==, "type.googleapis.com/cptest.v1.Nested");
  g_assert_cmpstr (cp_any_get_type_name (any), ==, "cptest.v1.Nested");

  /* binary: through the registry back to the class */
  unpacked = cp_any_unpack (any, &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_NESTED (unpacked));
  g_assert_true (cp_message_equal (unpacked, CP_MESSAGE (nested)));

  /* JSON: the message's members with "@type" */
  json = json_of (any);
  g_assert_cmpstr (json, ==, "{\"@type\":\"type.googleapis.com/cptest.v1.Nested\",\"id\":7,\"name\":\"seven\"}");
  back = from_json (CP_TYPE_ANY, json, &error);
  g_assert_no_error (error);
  g_assert_true (cp_message_equal (back, CP_MESSAGE (any)));

  /* "@type" may come last */
  parsed = from_json (CP_TYPE_ANY, "{\"name\":\"seven\",\"id\":7,"
                                   "\"@type\":\"type.googleapis.com/cptest.v1.Nested\"}", &error);
  g_assert_no_error (error);
  g_assert_true (cp_message_equal (parsed, CP_MESSAGE (any)));
  g_clear_object (&parsed);

  /* a wrapper inside an Any: {"@type", "value"} */
  {
    g_autoptr(CpStringValue) sv = cp_string_value_new ("hi");
    g_autoptr(CpAny) wrapped = cp_any_pack (CP_MESSAGE (sv), &error);
    g_autofree char *wjson = NULL;
    g_autoptr(CpMessage) wback = NULL;

    g_assert_no_error (error);
    wjson = json_of (wrapped);
    g_assert_cmpstr (wjson, ==, "{\"@type\":\"type.googleapis.com/google.protobuf.StringValue\","
                                "\"value\":\"hi\"}");
    wback = from_json (CP_TYPE_ANY, wjson, &error);
    g_assert_no_error (error);
    g_assert_true (cp_message_equal (wback, CP_MESSAGE (wrapped)));
  }

  /* the empty Any is {} both ways */
  {
    g_autoptr(CpAny) empty = cp_any_new ();
    g_autofree char *ejson = json_of (empty);

    g_assert_cmpstr (ejson, ==, "{}");
    parsed = from_json (CP_TYPE_ANY, "{}", &error);
    g_assert_no_error (error);
    g_assert_true (cp_message_equal (parsed, CP_MESSAGE (empty)));
    g_clear_object (&parsed);
  }

  /* unknown types and a missing "@type" are errors, not crashes */
  parsed = from_json (CP_TYPE_ANY, "{\"@type\":\"type.googleapis.com/no.Such\",\"a\":1}", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (parsed);
  g_clear_error (&error);
  parsed = from_json (CP_TYPE_ANY, "{\"id\":1}", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  parsed = from_json (CP_TYPE_ANY, "{\"@type\":5}", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  cp_any_set (any, "type.googleapis.com/no.Such", NULL);
  g_assert_null (cp_any_unpack (any, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (cp_message_serialize (CP_MESSAGE (any), CP_CODEC_JSON, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
}

static void
test_struct_value (void)
{
  const char *text = "{\"a\":null,\"b\":1.5,\"c\":\"s\",\"d\":true,\"e\":{\"x\":[1,\"y\",null,[],{}]}}";
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) st = from_json (CP_TYPE_STRUCT, text, &error);
  g_autoptr(CpMessage) bin_back = NULL;
  g_autoptr(GBytes) bin = NULL;
  g_autofree char *json = NULL;
  Google__Protobuf__Struct *c;

  g_assert_no_error (error);
  c = cp_message_get_c_message (st);
  g_assert_cmpuint (c->n_fields, ==, 5);
  json = json_of (st);
  g_assert_cmpstr (json, ==, text);

  /* the same in binary */
  bin = cp_message_serialize (st, CP_CODEC_PROTO, &error);
  g_assert_no_error (error);
  bin_back = cp_message_new_from_bytes (CP_TYPE_STRUCT, CP_CODEC_PROTO, bin, &error);
  g_assert_no_error (error);
  g_assert_true (cp_message_equal (bin_back, st));

  /* Value and ListValue on their own */
  {
    g_autoptr(CpMessage) v = from_json (CP_TYPE_VALUE, "[1,{\"k\":false}]", &error);
    g_autoptr(CpMessage) l = NULL;
    g_autoptr(CpMessage) n = NULL;
    g_autofree char *vjson = NULL;
    g_autofree char *ljson = NULL;
    g_autofree char *njson = NULL;

    g_assert_no_error (error);
    vjson = json_of (v);
    g_assert_cmpstr (vjson, ==, "[1,{\"k\":false}]");
    l = from_json (CP_TYPE_LIST_VALUE, "[]", &error);
    g_assert_no_error (error);
    ljson = json_of (l);
    g_assert_cmpstr (ljson, ==, "[]");
    n = from_json (CP_TYPE_VALUE, "null", &error);
    g_assert_no_error (error);
    njson = json_of (n);
    g_assert_cmpstr (njson, ==, "null");
  }

  /* a Struct inside an Any: the "value" form */
  {
    g_autoptr(CpAny) any = cp_any_pack (st, &error);
    g_autofree char *ajson = NULL;
    g_autofree char *expected = g_strdup_printf ("{\"@type\":\"type.googleapis.com/google.protobuf.Struct\","
                                                 "\"value\":%s}", text);

    g_assert_no_error (error);
    ajson = json_of (any);
    g_assert_cmpstr (ajson, ==, expected);
  }

  /* bad input */
  g_assert_null (from_json (CP_TYPE_STRUCT, "[1]", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (from_json (CP_TYPE_VALUE, "nul", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  {
    /* a Value with no kind cannot be written */
    g_autoptr(CpValue) unset = cp_value_new ();
    g_assert_null (cp_message_serialize (CP_MESSAGE (unset), CP_CODEC_JSON, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/object/new", test_new);
  g_test_add_func ("/message/object/registry", test_registry);
  g_test_add_func ("/message/object/registry-threads", test_registry_threads);
  g_test_add_func ("/message/object/fields/scalars", test_set_get_scalars);
  g_test_add_func ("/message/object/fields/compound", test_set_get_compound);
  g_test_add_func ("/message/object/serialize-parse", test_serialize_parse);
  g_test_add_func ("/message/object/copy-equal", test_copy_equal);
  g_test_add_func ("/message/object/equal/map-order", test_equal_map_order);
  g_test_add_func ("/message/object/equal/map-duplicates-nested", test_equal_map_duplicates_nested);
  g_test_add_func ("/message/object/take", test_take);
  g_test_add_func ("/message/well-known", test_well_known);
  g_test_add_func ("/message/well-known/any", test_any);
  g_test_add_func ("/message/well-known/struct-value", test_struct_value);

  return g_test_run ();
}
