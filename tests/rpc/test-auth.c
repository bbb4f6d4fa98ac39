/* test-auth.c: CpAuthInterceptor, its providers and CpCredentialsInterceptor
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real CpRpcServer (over TCP and in-process) serves Get and Put behind a
 * CpAuthInterceptor; its handlers record the principal, the scheme and the
 * credential headers they saw. Clients put credentials on the wire with
 * CpCredentialsInterceptor or with explicit per-call headers.
 */
#include <string.h>
#include "client-test-util.h"
#include "cp-secret-private.h"

#define TOKEN "s3cret-bearer-token"
#define API_KEY "k3y-0f-the-tenant"

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  CpAuthInterceptor *auth;
  guint n_calls;
  char *principal;       /* of the last call that reached a handler */
  char *scheme;
  char *authorization;   /* its Authorization header */
  char *api_key;         /* its X-API-Key header */
} Fixture;

static void
handle_any (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  f->n_calls++;
  g_free (f->principal);
  f->principal = g_strdup (cp_invocation_get_principal (invocation));
  g_free (f->scheme);
  f->scheme = g_strdup (cp_invocation_get_auth_scheme (invocation));
  g_free (f->authorization);
  f->authorization = g_strdup (soup_message_headers_get_one (headers, "Authorization"));
  g_free (f->api_key);
  f->api_key = g_strdup (soup_message_headers_get_one (headers, "X-API-Key"));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) put = cp_method_info_new (KV_PROCEDURE_PUT, CP_METHOD_UNARY,
                                                    KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, get, handle_any, f, NULL);
  cp_rpc_server_add_method (f->server, put, handle_any, f, NULL);
  f->auth = cp_auth_interceptor_new ();
  cp_rpc_server_add_interceptor (f->server, CP_SERVER_INTERCEPTOR (f->auth));

  f->channel = test_channel_new (f->server, data);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  cp_rpc_server_close (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_clear_object (&f->auth);
  g_free (f->principal);
  g_free (f->scheme);
  g_free (f->authorization);
  g_free (f->api_key);
}

static CpAuthProvider *
bearer_provider (Fixture *f)
{
  CpAuthProvider *provider = cp_token_auth_provider_new_bearer ();

  cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (provider), "other-token", "bob");
  cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (provider), TOKEN, "alice");
  cp_auth_interceptor_add_provider (f->auth, provider);
  return provider;
}

static CpAuthProvider *
api_key_provider (Fixture    *f,
                  const char *header)
{
  CpAuthProvider *provider = cp_token_auth_provider_new_api_key (header);

  cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (provider), API_KEY, "tenant-7");
  cp_auth_interceptor_add_provider (f->auth, provider);
  return provider;
}

/* Calls @procedure with @headers ("Name: value" strings) set per call;
 * returns whether it succeeded, with the error in @error. */
static gboolean
call (Fixture     *f,
      const char  *procedure,
      const char **headers,
      GError     **error)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(CpMessage) request = NULL;

  if (g_str_equal (procedure, KV_PROCEDURE_PUT))
    request = CP_MESSAGE (kv_test_put_request ("k", NULL));
  else
    request = CP_MESSAGE (kv_test_get_request ("k"));
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i++)
    {
      g_auto(GStrv) parts = g_strsplit (headers[i], ": ", 2);
      SoupMessageHeaders *h = cp_call_options_get_request_headers (options);

      /* "+Name: value" adds a second header of that name. */
      if (parts[0][0] == '+')
        soup_message_headers_append (h, parts[0] + 1, parts[1]);
      else
        soup_message_headers_replace (h, parts[0], parts[1]);
    }
  response = test_call_unary (f->channel, procedure, request, KV_TYPE_GET_RESPONSE, options,
                              NULL, error);
  return response != NULL;
}

/* The call fails `unauthenticated` without reaching the handler, and its
 * message names none of the credentials it carried. */
static void
assert_unauthenticated (Fixture     *f,
                        const char **headers,
                        const char  *message)
{
  g_autoptr(GError) error = NULL;
  guint n_calls = f->n_calls;

  g_assert_false (call (f, KV_PROCEDURE_GET, headers, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_cmpstr (error->message, ==, message);
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i++)
    {
      const char *value = strstr (headers[i], ": ") + 2;
      const char *space = strrchr (value, ' ');

      g_assert_null (strstr (error->message, space ? space + 1 : value));
    }
  g_assert_cmpuint (f->n_calls, ==, n_calls);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */

static void
test_bearer_accepted (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);
  g_autoptr(CpCredentialsInterceptor) credentials = cp_credentials_interceptor_new_bearer (TOKEN);
  g_autoptr(GError) error = NULL;

  /* The client interceptor puts the header on the wire. */
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (credentials));
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_calls, ==, 1);
  g_assert_cmpstr (f->authorization, ==, "Bearer " TOKEN);
  g_assert_cmpstr (f->principal, ==, "alice");
  g_assert_cmpstr (f->scheme, ==, "bearer");

  /* The scheme's name in any case; another token of the set. */
  g_assert_true (call (f, KV_PROCEDURE_GET,
                       (const char *[]) { "Authorization: bEaReR   other-token", NULL }, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "bob");
}

static void
test_bearer_wrong (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);

  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer not-the-token", NULL },
                          "invalid bearer credentials");
  /* A prefix, an extension, an empty token. */
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer s3cret", NULL },
                          "invalid bearer credentials");
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer " TOKEN "x", NULL },
                          "invalid bearer credentials");
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer", NULL },
                          "invalid bearer credentials");
  /* Two headers: a valid token does not hide another value. */
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer " TOKEN,
                                                "+Authorization: Bearer " TOKEN, NULL },
                          "invalid bearer credentials");
  /* The token without its scheme is another scheme: not the provider's. */
  assert_unauthenticated (f, (const char *[]) { "Authorization: " TOKEN, NULL },
                          "missing credentials");
}

static void
test_missing (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);

  assert_unauthenticated (f, NULL, "missing credentials");
  /* Another scheme of Authorization: skipped, so missing. */
  assert_unauthenticated (f, (const char *[]) { "Authorization: Basic YWxpY2U6cHc=", NULL },
                          "missing credentials");
}

static void
test_no_providers (Fixture       *f,
                   gconstpointer  data)
{
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer " TOKEN, NULL },
                          "missing credentials");
}

static void
test_api_key_custom_header (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = api_key_provider (f, "X-Tenant-Key");
  g_autoptr(CpCredentialsInterceptor) credentials =
    cp_credentials_interceptor_new_api_key ("X-Tenant-Key", API_KEY);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr (cp_token_auth_provider_get_header (CP_TOKEN_AUTH_PROVIDER (provider)), ==,
                   "X-Tenant-Key");
  g_assert_false (cp_token_auth_provider_get_bearer_scheme (CP_TOKEN_AUTH_PROVIDER (provider)));
  g_assert_cmpstr (cp_credentials_interceptor_get_header (credentials), ==, "X-Tenant-Key");

  /* The default header is not the provider's. */
  assert_unauthenticated (f, (const char *[]) { "X-API-Key: " API_KEY, NULL }, "missing credentials");
  assert_unauthenticated (f, (const char *[]) { "X-Tenant-Key: wrong-key", NULL },
                          "invalid api-key credentials");

  /* A per-call interceptor. */
  cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (credentials));
  response = test_call_unary (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (response);
  g_assert_cmpstr (f->principal, ==, "tenant-7");
  g_assert_cmpstr (f->scheme, ==, "api-key");
}

static void
test_api_key_default_header (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = api_key_provider (f, NULL);
  g_autoptr(CpCredentialsInterceptor) credentials = cp_credentials_interceptor_new_api_key (NULL, API_KEY);
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr (cp_token_auth_provider_get_header (CP_TOKEN_AUTH_PROVIDER (provider)), ==, "X-API-Key");
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (credentials));
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->api_key, ==, API_KEY);
  g_assert_cmpstr (f->principal, ==, "tenant-7");
}

typedef struct {
  guint n_calls;
  gboolean destroyed;
} VerifyState;

/* Accepts "user:NAME" as NAME. */
static gboolean
verify_user (const char  *credential,
             char       **principal,
             gpointer     user_data)
{
  VerifyState *state = user_data;

  state->n_calls++;
  if (!g_str_has_prefix (credential, "user:"))
    return FALSE;
  *principal = g_strdup (credential + strlen ("user:"));
  return TRUE;
}

static void
verify_destroyed (gpointer user_data)
{
  ((VerifyState *) user_data)->destroyed = TRUE;
}

static void
test_callback (Fixture       *f,
               gconstpointer  data)
{
  CpAuthProvider *provider = bearer_provider (f);
  VerifyState state = { 0, FALSE };
  g_autoptr(GError) error = NULL;

  cp_token_auth_provider_set_verify_func (CP_TOKEN_AUTH_PROVIDER (provider), verify_user, &state,
                                          verify_destroyed);

  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "Authorization: Bearer user:carol", NULL },
                       &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "carol");
  g_assert_cmpstr (f->scheme, ==, "bearer");
  g_assert_cmpuint (state.n_calls, ==, 1);

  /* The token set answers first: the function is not asked. */
  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "Authorization: Bearer " TOKEN, NULL },
                       &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "alice");
  g_assert_cmpuint (state.n_calls, ==, 1);

  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer robot:dave", NULL },
                          "invalid bearer credentials");
  g_assert_cmpuint (state.n_calls, ==, 2);

  g_assert_false (state.destroyed);
  /* Replaced: the old data is freed. */
  cp_token_auth_provider_set_verify_func (CP_TOKEN_AUTH_PROVIDER (provider), NULL, NULL, NULL);
  g_assert_true (state.destroyed);
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer user:carol", NULL },
                          "invalid bearer credentials");
  g_assert_cmpuint (state.n_calls, ==, 2);
  g_object_unref (provider);
}

static void
test_composition (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(CpAuthProvider) api_key = api_key_provider (f, NULL);
  g_autoptr(CpAuthProvider) bearer = bearer_provider (f);
  g_autoptr(GError) error = NULL;

  /* Only a bearer token: the API key provider skips, the second accepts. */
  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "Authorization: Bearer " TOKEN, NULL },
                       &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "alice");
  g_assert_cmpstr (f->scheme, ==, "bearer");

  /* Both valid: the first provider wins. */
  g_assert_true (call (f, KV_PROCEDURE_GET,
                       (const char *[]) { "X-API-Key: " API_KEY, "Authorization: Bearer " TOKEN, NULL },
                       &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "tenant-7");
  g_assert_cmpstr (f->scheme, ==, "api-key");

  /* A good API key and a bad bearer token: the first provider accepted. */
  g_assert_true (call (f, KV_PROCEDURE_GET,
                       (const char *[]) { "X-API-Key: " API_KEY, "Authorization: Bearer bad-token", NULL },
                       &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "tenant-7");

  /* A bad API key and a good bearer token: the rejection is final. */
  assert_unauthenticated (f, (const char *[]) { "X-API-Key: bad-key", "Authorization: Bearer " TOKEN, NULL },
                          "invalid api-key credentials");
}

static void
test_public_procedure (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);
  g_autoptr(GError) error = NULL;

  g_assert_false (cp_auth_interceptor_is_public (f->auth, KV_PROCEDURE_PUT));
  cp_auth_interceptor_add_public_procedure (f->auth, KV_PROCEDURE_PUT);
  cp_auth_interceptor_add_public_procedure (f->auth, "/grpc.health.v1.Health/" "*");
  g_assert_true (cp_auth_interceptor_is_public (f->auth, KV_PROCEDURE_PUT));
  g_assert_false (cp_auth_interceptor_is_public (f->auth, KV_PROCEDURE_GET));
  g_assert_true (cp_auth_interceptor_is_public (f->auth, "/grpc.health.v1.Health/Check"));
  g_assert_true (cp_auth_interceptor_is_public (f->auth, "/grpc.health.v1.Health/Watch"));
  g_assert_false (cp_auth_interceptor_is_public (f->auth, "/grpc.health.v1.Health/"));
  g_assert_false (cp_auth_interceptor_is_public (f->auth, "/grpc.health.v1.HealthX/Check"));
  g_assert_false (cp_auth_interceptor_is_public (f->auth, "/grpc.health.v1.Health/a/b"));

  /* No credentials: through, without a principal. */
  g_assert_true (call (f, KV_PROCEDURE_PUT, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_calls, ==, 1);
  g_assert_null (f->principal);
  g_assert_null (f->scheme);
  /* Even a wrong credential is not looked at. */
  g_assert_true (call (f, KV_PROCEDURE_PUT, (const char *[]) { "Authorization: Bearer bad", NULL }, &error));
  g_assert_no_error (error);
  /* The other procedure still needs them. */
  assert_unauthenticated (f, NULL, "missing credentials");
}

static void
test_allow_anonymous (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);
  g_autoptr(GError) error = NULL;

  g_assert_false (cp_auth_interceptor_get_allow_anonymous (f->auth));
  g_object_set (f->auth, "allow-anonymous", TRUE, NULL);
  g_assert_true (cp_auth_interceptor_get_allow_anonymous (f->auth));

  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (f->principal);
  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "Authorization: Bearer " TOKEN, NULL },
                       &error));
  g_assert_cmpstr (f->principal, ==, "alice");
  /* A wrong credential still fails. */
  assert_unauthenticated (f, (const char *[]) { "Authorization: Bearer wrong", NULL },
                          "invalid bearer credentials");
}

static void
test_rotation (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);
  g_autoptr(CpCredentialsInterceptor) credentials = cp_credentials_interceptor_new_bearer (NULL);
  g_autoptr(GError) error = NULL;

  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (credentials));
  /* No token yet: sent without one. */
  assert_unauthenticated (f, NULL, "missing credentials");

  cp_credentials_interceptor_set_token (credentials, "other-token");
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "bob");

  /* The server rotates: the old token is gone, a new one comes. */
  g_assert_true (cp_token_auth_provider_remove_token (CP_TOKEN_AUTH_PROVIDER (provider), "other-token"));
  g_assert_false (cp_token_auth_provider_remove_token (CP_TOKEN_AUTH_PROVIDER (provider), "other-token"));
  cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (provider), "next-token", "bob");
  g_assert_false (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  cp_credentials_interceptor_set_token (credentials, "next-token");
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "bob");

  /* Adding a token again changes its principal. */
  cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (provider), "next-token", "robert");
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_cmpstr (f->principal, ==, "robert");
}

static char *
token_for_call (CpClientCall *call,
                gpointer      user_data)
{
  guint *n = user_data;

  (*n)++;
  g_assert_cmpstr (cp_client_call_get_procedure (call), ==, KV_PROCEDURE_GET);
  return g_strdup (*n == 1 ? TOKEN : "other-token");
}

static void
test_token_func (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);
  g_autoptr(CpCredentialsInterceptor) credentials = cp_credentials_interceptor_new_bearer ("ignored");
  g_autoptr(GError) error = NULL;
  guint n = 0;

  cp_credentials_interceptor_set_token_func (credentials, token_for_call, &n, NULL);
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (credentials));
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "alice");
  g_assert_true (call (f, KV_PROCEDURE_GET, NULL, &error));
  g_assert_cmpstr (f->principal, ==, "bob");
  g_assert_cmpuint (n, ==, 2);
}

static void
test_explicit_header_wins (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(CpAuthProvider) provider = bearer_provider (f);
  g_autoptr(CpCredentialsInterceptor) credentials = cp_credentials_interceptor_new_bearer (TOKEN);
  g_autoptr(GError) error = NULL;

  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (credentials));
  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "Authorization: Bearer other-token", NULL },
                       &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->authorization, ==, "Bearer other-token");
  g_assert_cmpstr (f->principal, ==, "bob");
}

/* A custom provider: "X-User: NAME" is accepted as NAME, "X-User: root"
 * refused with its own error. */
typedef struct { CpAuthProvider parent_instance; } TestUserProvider;
typedef struct { CpAuthProviderClass parent_class; } TestUserProviderClass;
static GType test_user_provider_get_type (void);
G_DEFINE_TYPE (TestUserProvider, test_user_provider, CP_TYPE_AUTH_PROVIDER)

static CpAuthResult
test_user_provider_authenticate (CpAuthProvider  *provider,
                                 CpInvocation    *invocation,
                                 char           **principal,
                                 GError         **error)
{
  const char *user = soup_message_headers_get_one (cp_invocation_get_request_headers (invocation),
                                                   "X-User");

  if (user == NULL)
    return CP_AUTH_RESULT_SKIP;
  if (g_str_equal (user, "root"))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED, "no root here");
      return CP_AUTH_RESULT_REJECT;
    }
  *principal = g_strdup (user);
  return CP_AUTH_RESULT_ACCEPT;
}

static void
test_user_provider_class_init (TestUserProviderClass *klass)
{
  CP_AUTH_PROVIDER_CLASS (klass)->authenticate = test_user_provider_authenticate;
}

static void
test_user_provider_init (TestUserProvider *self)
{
}

static void
test_custom_provider (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpAuthProvider) custom = g_object_new (test_user_provider_get_type (),
                                                   "scheme", "x-user", NULL);
  g_autoptr(CpAuthProvider) bearer = NULL;
  g_autoptr(GError) error = NULL;

  cp_auth_interceptor_add_provider (f->auth, custom);
  bearer = bearer_provider (f);
  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "X-User: erin", NULL }, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f->principal, ==, "erin");
  g_assert_cmpstr (f->scheme, ==, "x-user");

  g_assert_false (call (f, KV_PROCEDURE_GET, (const char *[]) { "X-User: root", NULL }, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr (error->message, ==, "no root here");
  g_clear_error (&error);

  g_assert_true (call (f, KV_PROCEDURE_GET, (const char *[]) { "Authorization: Bearer " TOKEN, NULL },
                       &error));
  g_assert_cmpstr (f->principal, ==, "alice");
}

/* ------------------------------------------------------------------------ */
/* Without a server                                                          */

static void
test_secret_equal (void)
{
  g_assert_true (cp_token_equal ("abc", "abc"));
  g_assert_false (cp_token_equal ("abc", "abd"));
  g_assert_false (cp_token_equal ("ab", "abc"));
  g_assert_false (cp_token_equal ("abcd", "abc"));
  g_assert_false (cp_token_equal ("", "abc"));
  g_assert_true (cp_token_equal ("", ""));
  g_assert_false (cp_token_equal (NULL, "abc"));
  g_assert_false (cp_token_equal ("abc", NULL));
  g_assert_true (cp_secret_equal ((const guint8 *) "a\0b", (const guint8 *) "a\0b", 3));
  g_assert_false (cp_secret_equal ((const guint8 *) "a\0b", (const guint8 *) "a\0c", 3));
}

static void
test_provider_defaults (void)
{
  g_autoptr(CpAuthProvider) plain = g_object_new (CP_TYPE_AUTH_PROVIDER, NULL);
  g_autoptr(CpAuthProvider) bearer = cp_token_auth_provider_new_bearer ();
  CpAuthProvider *provider = cp_token_auth_provider_new_api_key ("X-Key");
  VerifyState state = { 0, FALSE };

  g_assert_cmpstr (cp_auth_provider_get_scheme (plain), ==, "custom");
  g_assert_cmpstr (cp_auth_provider_get_scheme (bearer), ==, "bearer");
  g_assert_cmpstr (cp_token_auth_provider_get_header (CP_TOKEN_AUTH_PROVIDER (bearer)), ==, "Authorization");
  g_assert_true (cp_token_auth_provider_get_bearer_scheme (CP_TOKEN_AUTH_PROVIDER (bearer)));
  g_assert_cmpstr (cp_auth_provider_get_scheme (provider), ==, "api-key");

  /* The verify function's data is freed with the provider. */
  cp_token_auth_provider_set_verify_func (CP_TOKEN_AUTH_PROVIDER (provider), verify_user, &state,
                                          verify_destroyed);
  g_assert_false (state.destroyed);
  g_object_unref (provider);
  g_assert_true (state.destroyed);
}

int
main (int    argc,
      char **argv)
{
  static const char *transports[] = { "tcp", "in-process" };
  static const struct {
    const char *name;
    void (*func) (Fixture *, gconstpointer);
  } tests[] = {
    { "bearer-accepted", test_bearer_accepted },
    { "bearer-wrong", test_bearer_wrong },
    { "missing", test_missing },
    { "no-providers", test_no_providers },
    { "api-key-custom-header", test_api_key_custom_header },
    { "api-key-default-header", test_api_key_default_header },
    { "callback", test_callback },
    { "composition", test_composition },
    { "public-procedure", test_public_procedure },
    { "allow-anonymous", test_allow_anonymous },
    { "rotation", test_rotation },
    { "token-func", test_token_func },
    { "explicit-header-wins", test_explicit_header_wins },
    { "custom-provider", test_custom_provider },
  };

  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  for (gsize t = 0; t < G_N_ELEMENTS (transports); t++)
    for (gsize i = 0; i < G_N_ELEMENTS (tests); i++)
      {
        g_autofree char *path = g_strdup_printf ("/rpc/auth/%s/%s", tests[i].name, transports[t]);

        g_test_add (path, Fixture, transports[t], fixture_setup, tests[i].func, fixture_teardown);
      }
  g_test_add_func ("/rpc/auth/secret-equal", test_secret_equal);
  g_test_add_func ("/rpc/auth/provider-defaults", test_provider_defaults);

  return g_test_run ();
}
