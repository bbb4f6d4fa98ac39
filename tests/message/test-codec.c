/* test-codec.c: binary and proto3 JSON codecs over protobuf-c descriptors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "cp-codec-private.h"
#include "cp-proto-field-private.h"
#include "cp-error.h"
#include "test_all.pb-c.h"

typedef Cptest__V1__TestAll TestAll;

static void
free_msg (gpointer m)
{
  if (m != NULL)
    protobuf_c_message_free_unpacked (m, NULL);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestAll, free_msg)

static TestAll *
decode_json (const char *json, gssize len, GError **error)
{
  g_autoptr(GBytes) b = g_bytes_new (json, len < 0 ? strlen (json) : (gsize) len);
  return (TestAll *) cp_codec_decode (CP_CODEC_JSON, &cptest__v1__test_all__descriptor, b, error);
}

static char *
encode_json (const void *m)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) b = cp_codec_encode (CP_CODEC_JSON, m, &error);
  g_assert_no_error (error);
  g_assert_nonnull (b);
  return g_strndup (g_bytes_get_data (b, NULL), g_bytes_get_size (b));
}

static TestAll *
new_test_all (void)
{
  return (TestAll *) cp_proto_message_new (&cptest__v1__test_all__descriptor);
}

static Cptest__V1__Nested *
new_nested (int32_t id, const char *name)
{
  Cptest__V1__Nested *n = (Cptest__V1__Nested *) cp_proto_message_new (&cptest__v1__nested__descriptor);
  n->id = id;
  if (name != NULL)
    n->name = g_strdup (name);
  return n;
}

/* A message with every singular scalar set to a non-default value, built
 * directly in C (not through the JSON decoder). */
static TestAll *
new_scalars (void)
{
  TestAll *m = new_test_all ();
  static const guint8 bytes[] = { 0x00, 0x01, 0xfe, 0xff };

  m->f_int32 = -5;
  m->f_int64 = G_GINT64_CONSTANT (-10000000000);
  m->f_uint32 = G_MAXUINT32;
  m->f_uint64 = G_MAXUINT64;
  m->f_sint32 = -7;
  m->f_sint64 = G_MININT64;
  m->f_fixed32 = 7;
  m->f_fixed64 = 8;
  m->f_sfixed32 = -9;
  m->f_sfixed64 = -10;
  m->f_float = 1.5f;
  m->f_double = 0.1;
  m->f_bool = TRUE;
  m->f_string = g_strdup ("h\xc3\xa9llo \"q\"\n\\\x01");
  m->f_bytes.data = g_memdup2 (bytes, sizeof bytes);
  m->f_bytes.len = sizeof bytes;
  m->f_enum = CPTEST__V1__COLOR__COLOR_GREEN;
  m->f_nested = new_nested (1, "n");
  m->snake_case_name_2 = g_strdup ("s");
  return m;
}

static const char scalars_json[] =
  "{\"fInt32\":-5,\"fInt64\":\"-10000000000\",\"fUint32\":4294967295,"
  "\"fUint64\":\"18446744073709551615\",\"fSint32\":-7,\"fSint64\":\"-9223372036854775808\","
  "\"fFixed32\":7,\"fFixed64\":\"8\",\"fSfixed32\":-9,\"fSfixed64\":\"-10\","
  "\"fFloat\":1.5,\"fDouble\":0.1,\"fBool\":true,"
  "\"fString\":\"h\xc3\xa9llo \\\"q\\\"\\n\\\\\\u0001\",\"fBytes\":\"AAH+/w==\","
  "\"fEnum\":\"COLOR_GREEN\",\"fNested\":{\"id\":1,\"name\":\"n\"},\"snakeCaseName2\":\"s\"}";

static void
test_names (void)
{
  CpCodec codec = CP_CODEC_PROTO;

  g_assert_cmpstr (cp_codec_to_string (CP_CODEC_PROTO), ==, "proto");
  g_assert_cmpstr (cp_codec_to_string (CP_CODEC_JSON), ==, "json");
  g_assert_true (cp_codec_from_string ("json", &codec));
  g_assert_cmpint (codec, ==, CP_CODEC_JSON);
  g_assert_true (cp_codec_from_string ("PROTO", &codec));
  g_assert_cmpint (codec, ==, CP_CODEC_PROTO);
  g_assert_false (cp_codec_from_string ("xml", &codec));
  g_assert_false (cp_codec_from_string ("", NULL));
}

static void
test_proto_roundtrip (void)
{
  g_autoptr(TestAll) m = new_scalars ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) b1 = NULL, b2 = NULL;
  g_autoptr(TestAll) d = NULL;

  m->n_r_string = 2;
  m->r_string = g_new (char *, 2);
  m->r_string[0] = g_strdup ("a");
  m->r_string[1] = g_strdup ("");
  m->choice_case = CPTEST__V1__TEST_ALL__CHOICE_O_INT32;
  m->o_int32 = 0;

  b1 = cp_codec_encode (CP_CODEC_PROTO, &m->base, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (b1), >, 0);
  d = (TestAll *) cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, b1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (d);
  g_assert_cmpint (d->f_int32, ==, -5);
  g_assert_cmpuint (d->f_uint64, ==, G_MAXUINT64);
  g_assert_cmpint (d->f_sint64, ==, G_MININT64);
  g_assert_cmpstr (d->f_string, ==, m->f_string);
  g_assert_cmpmem (d->f_bytes.data, d->f_bytes.len, m->f_bytes.data, m->f_bytes.len);
  g_assert_cmpint (d->f_nested->id, ==, 1);
  g_assert_cmpuint (d->n_r_string, ==, 2);
  g_assert_cmpstr (d->r_string[1], ==, "");
  g_assert_cmpint (d->choice_case, ==, CPTEST__V1__TEST_ALL__CHOICE_O_INT32);
  b2 = cp_codec_encode (CP_CODEC_PROTO, &d->base, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (b1, b2));
}

static void
test_proto_empty (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(TestAll) d = NULL;
  g_autoptr(GBytes) out = NULL;

  d = (TestAll *) cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, empty, &error);
  g_assert_no_error (error);
  g_assert_nonnull (d);
  g_assert_cmpint (d->f_int32, ==, 0);
  g_assert_cmpstr (d->f_string, ==, "");
  g_assert_null (d->f_nested);
  out = cp_codec_encode (CP_CODEC_PROTO, &d->base, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (out), ==, 0);

  /* an empty body is not JSON */
  g_clear_pointer (&d, free_msg);
  d = (TestAll *) cp_codec_decode (CP_CODEC_JSON, &cptest__v1__test_all__descriptor, empty, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (d);
}

static GBytes *
nested_recursive (guint levels)
{
  /* Recursive.child (field 2) nested @levels times, built back to front */
  GByteArray *buf = g_byte_array_new ();
  for (guint i = 0; i < levels; i++)
    {
      guint8 varint[10];
      gsize len = buf->len, n = 0;
      do
        {
          varint[n++] = (len & 0x7f) | (len > 0x7f ? 0x80 : 0);
          len >>= 7;
        }
      while (len > 0);
      while (n > 0)
        g_byte_array_append (buf, &varint[--n], 1);
      g_byte_array_append (buf, (const guint8 *) "\x12", 1);
    }
  for (guint i = 0; i < buf->len / 2; i++)
    {
      guint8 t = buf->data[i];
      buf->data[i] = buf->data[buf->len - 1 - i];
      buf->data[buf->len - 1 - i] = t;
    }
  return g_byte_array_free_to_bytes (buf);
}

static void
test_proto_invalid (void)
{
  static const struct {
    const char *data;
    gsize len;
  } cases[] = {
    { "\xff\xff\xff", 3 },            /* truncated varint tag */
    { "\x08", 1 },                    /* tag without value */
    { "\x08\x80", 2 },                /* truncated varint value */
    { "\x0f\x00", 2 },                /* wire type 7 */
    { "\x72\x05" "ab", 4 },           /* f_string: length beyond the end */
    { "\x72\x01\xff", 3 },            /* f_string: invalid UTF-8 */
    { "\x8a\x01\x02\x08", 4 },        /* f_nested (17): truncated sub-message */
    { "\x00\x00", 2 },                /* field number 0 */
    { "\x0b\x0c", 2 },                /* groups are not supported */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) b = g_bytes_new (cases[i].data, cases[i].len);
      ProtobufCMessage *m = cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, b, &error);
      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_null (m);
    }
}

static void
test_proto_depth (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) ok = nested_recursive (CP_MESSAGE_MAX_DEPTH - 1);
  g_autoptr(GBytes) deep = nested_recursive (CP_MESSAGE_MAX_DEPTH);
  g_autoptr(GBytes) very_deep = nested_recursive (100000);
  ProtobufCMessage *m;
  Cptest__V1__Recursive *r;
  guint levels = 0;

  m = cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__recursive__descriptor, ok, &error);
  g_assert_no_error (error);
  for (r = (Cptest__V1__Recursive *) m; r != NULL; r = r->child)
    levels++;
  g_assert_cmpuint (levels, ==, CP_MESSAGE_MAX_DEPTH);
  free_msg (m);

  m = cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__recursive__descriptor, deep, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (m);
  g_clear_error (&error);

  m = cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__recursive__descriptor, very_deep, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (m);
}

static void
test_json_encode_scalars (void)
{
  g_autoptr(TestAll) m = new_scalars ();
  g_autofree char *json = encode_json (m);

  g_assert_cmpstr (json, ==, scalars_json);
}

static void
test_json_encode_defaults (void)
{
  g_autoptr(TestAll) m = new_test_all ();
  g_autofree char *j1 = NULL, *j2 = NULL, *j3 = NULL, *j4 = NULL;

  /* fields without presence at their default are omitted */
  j1 = encode_json (m);
  g_assert_cmpstr (j1, ==, "{}");

  /* message fields and oneof members are written iff set, even when default */
  m->f_nested = new_nested (0, NULL);
  m->choice_case = CPTEST__V1__TEST_ALL__CHOICE_O_INT32;
  m->o_int32 = 0;
  j2 = encode_json (m);
  g_assert_cmpstr (j2, ==, "{\"fNested\":{},\"oInt32\":0}");

  m->choice_case = CPTEST__V1__TEST_ALL__CHOICE_O_STRING;
  m->o_string = g_strdup ("");
  j3 = encode_json (m);
  g_assert_cmpstr (j3, ==, "{\"fNested\":{},\"oString\":\"\"}");

  g_free (m->o_string);
  m->o_string = NULL;
  m->choice_case = CPTEST__V1__TEST_ALL__CHOICE_O_ENUM;
  m->o_enum = 0;
  j4 = encode_json (m);
  g_assert_cmpstr (j4, ==, "{\"fNested\":{},\"oEnum\":\"COLOR_UNSPECIFIED\"}");
}

static void
test_json_encode_floats (void)
{
  static const double doubles[] = {
    0.1, 1e21, 1e-7, 123456789.125, -0.0, 1e-6, 5e-324, 1.7976931348623157e308,
    100, -2.5, 1e20, 0.30000000000000004,
  };
  static const float floats[] = { 0.1f, 3.4028235e38f, 1e-7f, 16777216.0f, -1.25f };
  g_autoptr(TestAll) m = new_test_all ();
  g_autofree char *json = NULL, *special = NULL;

  m->n_r_double = G_N_ELEMENTS (doubles);
  m->r_double = g_memdup2 (doubles, sizeof doubles);
  m->n_r_float = G_N_ELEMENTS (floats);
  m->r_float = g_memdup2 (floats, sizeof floats);
  json = encode_json (m);
  g_assert_cmpstr (json, ==,
                   "{\"rFloat\":[0.1,3.4028235e+38,1e-7,16777216,-1.25],"
                   "\"rDouble\":[0.1,1e+21,1e-7,123456789.125,-0,0.000001,5e-324,"
                   "1.7976931348623157e+308,100,-2.5,100000000000000000000,0.30000000000000004]}");

  m->r_double[0] = NAN;
  m->r_double[1] = INFINITY;
  m->r_double[2] = -INFINITY;
  m->n_r_double = 3;
  m->n_r_float = 0;
  special = encode_json (m);
  g_assert_cmpstr (special, ==, "{\"rDouble\":[\"NaN\",\"Infinity\",\"-Infinity\"]}");
}

static const char collections_json[] =
  "{\"rInt32\":[1,-2],\"rInt64\":[\"1\",\"-2\"],\"rUint64\":[\"18446744073709551615\"],"
  "\"rBool\":[true,false],\"rString\":[\"a\",\"\"],\"rBytes\":[\"\",\"AQ==\"],"
  "\"rEnum\":[\"COLOR_RED\",7,\"COLOR_BLUE\"],\"rNested\":[{\"id\":1},{}],"
  "\"mStringString\":{\"k\":\"v\",\"\":\"empty\"},"
  "\"mInt32Nested\":{\"-5\":{\"name\":\"x\"},\"7\":{}},"
  "\"mBoolInt64\":{\"true\":\"3\",\"false\":\"0\"},"
  "\"mUint64Enum\":{\"18446744073709551615\":\"COLOR_BLUE\"},"
  "\"mStringBytes\":{\"b\":\"/w==\"}}";

static void
test_json_collections (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TestAll) m = decode_json (collections_json, -1, &error);
  g_autofree char *out = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (m);

  /* the decoded C structs */
  g_assert_cmpuint (m->n_r_int64, ==, 2);
  g_assert_cmpint (m->r_int64[1], ==, -2);
  g_assert_cmpuint (m->n_r_enum, ==, 3);
  g_assert_cmpint (m->r_enum[1], ==, 7);
  g_assert_cmpint (m->r_enum[2], ==, CPTEST__V1__COLOR__COLOR_BLUE);
  g_assert_cmpuint (m->n_r_bytes, ==, 2);
  g_assert_cmpuint (m->r_bytes[0].len, ==, 0);
  g_assert_cmpuint (m->r_bytes[1].len, ==, 1);
  g_assert_cmpuint (m->r_bytes[1].data[0], ==, 1);
  g_assert_cmpuint (m->n_m_int32_nested, ==, 2);
  g_assert_cmpint (m->m_int32_nested[0]->key, ==, -5);
  g_assert_cmpstr (m->m_int32_nested[0]->value->name, ==, "x");
  g_assert_cmpuint (m->n_m_bool_int64, ==, 2);
  g_assert_true (m->m_bool_int64[0]->key);
  g_assert_cmpint (m->m_bool_int64[0]->value, ==, 3);
  g_assert_cmpuint (m->m_uint64_enum[0]->key, ==, G_MAXUINT64);
  g_assert_cmpint (m->m_uint64_enum[0]->value, ==, CPTEST__V1__COLOR__COLOR_BLUE);

  /* and back: canonical output equals the canonical input */
  out = encode_json (m);
  g_assert_cmpstr (out, ==, collections_json);
}

static void
test_json_decode_variants (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TestAll) m = NULL;
  const char *json =
    " {\n \"f_int32\" : 1e2 , \"fInt64\": \"-9223372036854775808\", \"f_uint32\": \"4294967295\","
    "\"f_uint64\": 18446744073709551615, \"fSint32\": \"1.0\", \"fSint64\": -0,"
    "\"fFixed32\": 1.5e1, \"f_fixed64\": \"12E+1\", \"fSfixed32\": \"-2147483648\","
    "\"f_float\": \"NaN\", \"fDouble\": \"-Infinity\", \"f_bytes\": \"-_8\", \"f_enum\": 2,"
    "\"fString\": \"\\u00e9\\ud83d\\ude00\\/\", \"fNested\": null,"
    "\"unknownField\": {\"a\": [1, {\"b\": null}, \"x\", true, -1.5e3]},"
    "\"f_bool\": true, \"oString\": null, \"oInt32\": 4,"
    "\"snakeCaseName2\": \"b\","
    "\"rInt32\": [1, \"2\", 3e0], \"r_enum\": [\"COLOR_RED\", \"NO_SUCH_NAME\", 9],"
    "\"mInt32Nested\": {\"-1\": {\"id\": 5}}, \"m_bool_int64\": {\"false\": \"9\"},"
    "\"fRecursive\": {\"children\": [{}, {\"depth\": 2}]}"
    "}  ";

  m = decode_json (json, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  g_assert_cmpint (m->f_int32, ==, 100);
  g_assert_cmpint (m->f_int64, ==, G_MININT64);
  g_assert_cmpuint (m->f_uint32, ==, G_MAXUINT32);
  g_assert_cmpuint (m->f_uint64, ==, G_MAXUINT64);
  g_assert_cmpint (m->f_sint32, ==, 1);
  g_assert_cmpint (m->f_sint64, ==, 0);
  g_assert_cmpuint (m->f_fixed32, ==, 15);
  g_assert_cmpuint (m->f_fixed64, ==, 120);
  g_assert_cmpint (m->f_sfixed32, ==, G_MININT32);
  g_assert_true (isnan (m->f_float));
  g_assert_true (isinf (m->f_double) && m->f_double < 0);
  g_assert_cmpuint (m->f_bytes.len, ==, 2);
  g_assert_cmpuint (m->f_bytes.data[0], ==, 0xfb);
  g_assert_cmpuint (m->f_bytes.data[1], ==, 0xff);
  g_assert_cmpint (m->f_enum, ==, CPTEST__V1__COLOR__COLOR_GREEN);
  g_assert_cmpstr (m->f_string, ==, "\xc3\xa9\xf0\x9f\x98\x80/");
  g_assert_null (m->f_nested);
  g_assert_true (m->f_bool);
  /* a null oneof member leaves the oneof to the other one */
  g_assert_cmpint (m->choice_case, ==, CPTEST__V1__TEST_ALL__CHOICE_O_INT32);
  g_assert_cmpint (m->o_int32, ==, 4);
  /* the JSON name of a snake_case field with a digit */
  g_assert_cmpstr (m->snake_case_name_2, ==, "b");
  g_assert_cmpuint (m->n_r_int32, ==, 3);
  g_assert_cmpint (m->r_int32[2], ==, 3);
  /* unknown enum names are dropped like unknown fields */
  g_assert_cmpuint (m->n_r_enum, ==, 2);
  g_assert_cmpint (m->r_enum[0], ==, CPTEST__V1__COLOR__COLOR_RED);
  g_assert_cmpint (m->r_enum[1], ==, 9);
  /* map keys from strings: int32 and bool */
  g_assert_cmpuint (m->n_m_int32_nested, ==, 1);
  g_assert_cmpint (m->m_int32_nested[0]->value->id, ==, 5);
  g_assert_cmpuint (m->n_m_bool_int64, ==, 1);
  g_assert_false (m->m_bool_int64[0]->key);
  g_assert_cmpint (m->m_bool_int64[0]->value, ==, 9);
  g_assert_nonnull (m->f_recursive);
  g_assert_cmpuint (m->f_recursive->n_children, ==, 2);
  g_assert_cmpint (m->f_recursive->children[1]->depth, ==, 2);
}

static void
test_json_decode_null (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TestAll) m = NULL;
  g_autofree char *out = NULL;

  /* null leaves the default (a field named twice is an error: see
   * test_json_duplicate_fields) */
  m = decode_json ("{\"fString\":null,\"fInt32\":null,\"rInt32\":null,"
                   "\"mStringString\":null,\"fNested\":null,\"oInt32\":null,"
                   "\"fEnum\":null,\"fBytes\":null}", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (m->f_string, ==, "");
  g_assert_cmpuint (m->n_r_int32, ==, 0);
  g_assert_null (m->f_nested);
  g_assert_cmpint (m->choice_case, ==, CPTEST__V1__TEST_ALL__CHOICE__NOT_SET);
  out = encode_json (m);
  g_assert_cmpstr (out, ==, "{}");
}

static void
test_json_reject (void)
{
  static const char *const cases[] = {
    "{\"fInt32\": 1.5}",
    "{\"fInt32\": 2147483648}",
    "{\"fInt32\": -2147483649}",
    "{\"fInt32\": \"2147483648\"}",
    "{\"fUint32\": -1}",
    "{\"fUint32\": 4294967296}",
    "{\"fUint64\": \"18446744073709551616\"}",
    "{\"fUint64\": 18446744073709551616}",
    "{\"fInt64\": \"9223372036854775808\"}",
    "{\"fInt64\": 1e19}",
    "{\"fInt32\": 1e400}",
    "{\"fInt32\": 1e-400}",
    "{\"fInt32\": \"\"}",
    "{\"fInt32\": \" 1\"}",
    "{\"fInt32\": \"0x10\"}",
    "{\"fInt32\": \"1.5\"}",
    "{\"fInt32\": true}",
    "{\"fInt32\": NaN}",
    "{\"fInt32\": 01}",
    "{\"fInt32\": +1}",
    "{\"fInt32\": .5}",
    "{\"fInt32\": 1.}",
    "{\"fInt32\": -}",
    "{\"fString\": 5}",
    "{\"fString\": \"\\ud800\"}",
    "{\"fString\": \"\\udc00x\"}",
    "{\"fString\": \"a\\u0000b\"}",
    "{\"fString\": \"\x01\"}",
    "{\"fString\": \"\xff\"}",
    "{\"fString\": \"\\x\"}",
    "{\"fString\": \"abc}",
    "{\"fBool\": \"true\"}",
    "{\"fBool\": 1}",
    "{\"fBytes\": \"***\"}",
    "{\"fBytes\": \"A\"}",
    "{\"fBytes\": 1}",
    "{\"fNested\": []}",
    "{\"fNested\": 1}",
    "{\"fNested\": {\"id\": \"x\"}}",
    "{\"rInt32\": 5}",
    "{\"rInt32\": [null]}",
    "{\"rInt32\": [1,]}",
    "{\"mStringString\": []}",
    "{\"mStringString\": {\"a\": null}}",
    "{\"mStringString\": {\"a\": 1}}",
    "{\"mInt32Nested\": {\"abc\": {}}}",
    "{\"mInt32Nested\": {\"1.5\": {}}}",
    "{\"mBoolInt64\": {\"yes\": \"1\"}}",
    "{\"fFloat\": 1e39}",
    "{\"fFloat\": \"-1e39\"}",
    "{\"fDouble\": 1e999}",
    "{\"fDouble\": \"nan\"}",
    "{\"fDouble\": \"\"}",
    "{\"fEnum\": 1.5}",
    "{\"fEnum\": true}",
    "{\"fEnum\": 2147483648}",
    "[]",
    "null",
    "\"x\"",
    "1",
    "",
    "   ",
    "{",
    "{\"fInt32\"",
    "{\"fInt32\":",
    "{\"fInt32\": 1,}",
    "{\"fInt32\": 1 \"fInt64\": 2}",
    "{fInt32: 1}",
    "{'fInt32': 1}",
    "{} {}",
    "{}x",
    "{\"unknown\": [1, 2}",
    "{\"unknown\": tru}",
    "{\"unknown\": nul}",
    "{\"unknown\": {\"a\" 1}}",
    "{\"unknown\": {1: 1}}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(TestAll) m = NULL;

      g_test_message ("input: %s", cases[i]);
      m = decode_json (cases[i], -1, &error);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_null (m);
      g_assert_true (g_str_has_prefix (error->message, "invalid JSON"));
    }

  /* an embedded NUL byte in the input */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(TestAll) m = decode_json ("{\"fString\":\"a\0\"}", 15, &error);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_assert_null (m);
  }
}

/* bytes fields: read in either alphabet, padded or not (as protobuf-go);
 * written standard and padded. Other text is refused, not skipped. */
static void
test_json_bytes (void)
{
  static const char * const good[] = { "+/8=", "+/8", "-_8=", "-_8" };
  static const char * const bad[] = {
    "+/8==", "+/8===", "+_8", "-/8", "+/ 8", "+/8\\n", "=+/8", "+=/8",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"fBytes\":\"%s\"}", good[i]);
      g_autoptr(GError) error = NULL;
      g_autoptr(TestAll) m = decode_json (json, -1, &error);
      g_autofree char *out = NULL;

      g_test_message ("input: %s", json);
      g_assert_no_error (error);
      g_assert_cmpmem (m->f_bytes.data, m->f_bytes.len, "\xfb\xff", 2);
      out = encode_json (m);
      g_assert_cmpstr (out, ==, "{\"fBytes\":\"+/8=\"}");
    }

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"fBytes\":\"%s\"}", bad[i]);
      g_autoptr(GError) error = NULL;
      g_autoptr(TestAll) m = decode_json (json, -1, &error);

      g_test_message ("input: %s", json);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_null (m);
      g_assert_nonnull (strstr (error->message, "invalid base64"));
    }
}

static char *
nested_json (guint levels)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < levels; i++)
    g_string_append (s, "{\"child\":");
  g_string_append (s, "{\"depth\":1}");
  for (guint i = 0; i < levels; i++)
    g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

static void
test_json_depth (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ok = nested_json (CP_MESSAGE_MAX_DEPTH - 1);
  g_autofree char *deep = nested_json (CP_MESSAGE_MAX_DEPTH);
  g_autofree char *brackets = NULL;
  g_autoptr(GBytes) b = NULL;
  ProtobufCMessage *m;
  GString *s;

  b = g_bytes_new (ok, strlen (ok));
  m = cp_codec_decode (CP_CODEC_JSON, &cptest__v1__recursive__descriptor, b, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  free_msg (m);
  g_bytes_unref (b);

  b = g_bytes_new (deep, strlen (deep));
  m = cp_codec_decode (CP_CODEC_JSON, &cptest__v1__recursive__descriptor, b, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (m);
  g_clear_error (&error);
  g_bytes_unref (b);

  /* deep nesting inside an unknown field is bounded too */
  s = g_string_new ("{\"unknown\":");
  for (guint i = 0; i < 200000; i++)
    g_string_append (s, i % 2 ? "[" : "{\"a\":");
  brackets = g_string_free (s, FALSE);
  b = g_bytes_new (brackets, strlen (brackets));
  m = cp_codec_decode (CP_CODEC_JSON, &cptest__v1__recursive__descriptor, b, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (m);
}

/* JSON → message → binary → message → JSON gives the same JSON, and the
 * canonical JSON reads back to itself. */
static void
test_json_differential (void)
{
  const char *inputs[] = {
    "{}",
    scalars_json,
    collections_json,
    "{\"fInt32\":\"7\",\"f_double\":\"1e-300\",\"fFloat\":3.4028234663852886e38,\"fBytes\":\"AQID\"}",
    "{\"oNested\":{},\"rDouble\":[\"NaN\",-0,1.5]}",
    "{\"oBytes\":\"\",\"fRecursive\":{\"child\":{\"child\":{\"depth\":-3}}}}",
    "{\"oEnum\":123,\"fEnum\":-3,\"rNested\":[{\"name\":\"\\u2028\\\"\"}]}",
    "{\"mStringBytes\":{\"\\u0001\":\"\"},\"mUint64Enum\":{\"0\":\"COLOR_UNSPECIFIED\"}}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (inputs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(TestAll) m1 = NULL, m2 = NULL, m3 = NULL;
      g_autoptr(GBytes) bin = NULL;
      g_autofree char *j1 = NULL, *j2 = NULL, *j3 = NULL;

      g_test_message ("input: %s", inputs[i]);
      m1 = decode_json (inputs[i], -1, &error);
      g_assert_no_error (error);
      j1 = encode_json (m1);
      bin = cp_codec_encode (CP_CODEC_PROTO, &m1->base, &error);
      g_assert_no_error (error);
      m2 = (TestAll *) cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, bin, &error);
      g_assert_no_error (error);
      j2 = encode_json (m2);
      g_assert_cmpstr (j1, ==, j2);
      m3 = decode_json (j1, -1, &error);
      g_assert_no_error (error);
      j3 = encode_json (m3);
      g_assert_cmpstr (j1, ==, j3);
    }
}

static void
test_json_node (void)
{
  g_autoptr(TestAll) m = new_scalars ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = cp_json_from_message (&m->base, &error);
  g_autoptr(TestAll) back = NULL;
  g_autofree char *json = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (node);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "fUint64"), ==,
                   "18446744073709551615");
  back = (TestAll *) cp_json_to_message (&cptest__v1__test_all__descriptor, node, &error);
  g_assert_no_error (error);
  json = encode_json (back);
  g_assert_cmpstr (json, ==, scalars_json);
}

static void
test_json_field_name (void)
{
  static const struct { const char *in, *out; } cases[] = {
    { "foo_bar", "fooBar" }, { "f_int32", "fInt32" }, { "snake_case_name_2", "snakeCaseName2" },
    { "already", "already" }, { "trailing_", "trailing" }, { "a__b", "aB" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = cp_json_field_name (cases[i].in);
      g_assert_cmpstr (name, ==, cases[i].out);
    }
}

static void
test_json_invalid_utf8_output (void)
{
  g_autoptr(TestAll) m = new_test_all ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = NULL;

  m->f_string = g_strdup ("\xff");
  out = cp_codec_encode (CP_CODEC_JSON, &m->base, &error);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
}

/* As protobuf-go: a field given twice is an error, not "last wins", also
 * under its two spellings, and so are two members of one oneof. */
static void
test_json_duplicate_fields (void)
{
  static const struct { const char *json; const char *field; } bad[] = {
    { "{\"fInt32\":1,\"fInt32\":2}", "f_int32" },
    { "{\"f_int32\":1,\"fInt32\":2}", "f_int32" },
    { "{\"fString\":\"a\",\"f_string\":null}", "f_string" },
    { "{\"rInt32\":[1],\"r_int32\":[2]}", "r_int32" },
    { "{\"mStringString\":{},\"mStringString\":{}}", "m_string_string" },
    { "{\"fNested\":{\"id\":1,\"id\":2}}", "id" },
    { "{\"snakeCaseName2\":\"a\",\"snake_case_name_2\":\"b\"}", "snake_case_name_2" },
    { "{\"oString\":\"a\",\"oInt32\":1}", "o_int32" },
    { "{\"oEnum\":\"COLOR_RED\",\"o_nested\":{}}", "o_nested" },
    /* a map key given twice, also in another spelling of the same value */
    { "{\"mStringString\":{\"a\":\"1\",\"a\":\"2\"}}", "m_string_string" },
    { "{\"mInt32Nested\":{\"-1\":{},\"-1\":{}}}", "m_int32_nested" },
    { "{\"mBoolInt64\":{\"true\":\"1\",\"false\":\"2\",\"true\":\"3\"}}", "m_bool_int64" },
  };
  static const char *good[] = {
    "{\"fInt32\":1,\"fInt64\":\"2\"}",
    /* A null oneof member does not set the oneof (protobuf-go). */
    "{\"oString\":null,\"oInt32\":5}",
    "{\"fNested\":{\"id\":1},\"rNested\":[{\"id\":1},{\"id\":2}]}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(TestAll) m = decode_json (bad[i].json, -1, &error);

      g_test_message ("%s", bad[i].json);
      g_assert_null (m);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, bad[i].field));
    }
  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(TestAll) m = decode_json (good[i], -1, &error);

      g_assert_no_error (error);
      g_assert_nonnull (m);
    }
}

/* Tiny unknown fields cost ~30 times their wire size once unpacked by
 * protobuf-c: the pre-scan refuses them against the decoded-size bound,
 * before anything is allocated. */
static void
test_proto_decoded_size_bound (void)
{
  const gsize n = 100000;
  GByteArray *wire = g_byte_array_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  ProtobufCMessage *m;

  for (gsize i = 0; i < n; i++)
    {
      /* field 1000 (unknown to TestAll), varint 1: 3 bytes */
      static const guint8 field[] = { 0xc0, 0x3e, 0x01 };
      g_byte_array_append (wire, field, sizeof field);
    }
  bytes = g_byte_array_free_to_bytes (wire);

  /* 300 KB on the wire, estimated at more than 8 MB decoded. */
  m = cp_codec_decode_bounded (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, bytes,
                               16 * g_bytes_get_size (bytes), &error);
  g_assert_null (m);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_clear_error (&error);

  /* Unbounded (and a generous bound) still decode them. */
  m = cp_codec_decode_bounded (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, bytes,
                               128 * g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (protobuf_c_message_get_packed_size (m), ==, g_bytes_get_size (bytes));
  protobuf_c_message_free_unpacked (m, NULL);

  /* Ordinary messages are far below 16x: a large string field. */
  {
    g_autoptr(TestAll) big = NULL;
    g_autofree char *text = g_strnfill (1000000, 's');
    TestAll src = CPTEST__V1__TEST_ALL__INIT;
    g_autoptr(GBytes) packed = NULL;

    src.f_string = text;
    packed = cp_codec_encode (CP_CODEC_PROTO, &src.base, &error);
    g_assert_no_error (error);
    big = (TestAll *) cp_codec_decode_bounded (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor,
                                               packed, 2 * g_bytes_get_size (packed), &error);
    g_assert_no_error (error);
    g_assert_cmpstr (big->f_string, ==, text);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/codec/names", test_names);
  g_test_add_func ("/message/codec/proto/roundtrip", test_proto_roundtrip);
  g_test_add_func ("/message/codec/proto/empty", test_proto_empty);
  g_test_add_func ("/message/codec/proto/invalid", test_proto_invalid);
  g_test_add_func ("/message/codec/proto/depth", test_proto_depth);
  g_test_add_func ("/message/codec/json/encode-scalars", test_json_encode_scalars);
  g_test_add_func ("/message/codec/json/encode-defaults", test_json_encode_defaults);
  g_test_add_func ("/message/codec/json/encode-floats", test_json_encode_floats);
  g_test_add_func ("/message/codec/json/collections", test_json_collections);
  g_test_add_func ("/message/codec/json/decode-variants", test_json_decode_variants);
  g_test_add_func ("/message/codec/json/decode-null", test_json_decode_null);
  g_test_add_func ("/message/codec/json/reject", test_json_reject);
  g_test_add_func ("/message/codec/json/bytes", test_json_bytes);
  g_test_add_func ("/message/codec/json/depth", test_json_depth);
  g_test_add_func ("/message/codec/json/differential", test_json_differential);
  g_test_add_func ("/message/codec/json/node", test_json_node);
  g_test_add_func ("/message/codec/json/field-name", test_json_field_name);
  g_test_add_func ("/message/codec/json/invalid-utf8-output", test_json_invalid_utf8_output);
  g_test_add_func ("/message/codec/json/duplicate-fields", test_json_duplicate_fields);
  g_test_add_func ("/message/codec/proto/decoded-size-bound", test_proto_decoded_size_bound);

  return g_test_run ();
}
