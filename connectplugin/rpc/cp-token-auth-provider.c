/* cp-token-auth-provider.c: bearer tokens and API keys checked on the server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The token set keeps SHA-256 digests, not the tokens: a check hashes the
 * presented credential once and compares the digest with every entry, in
 * constant time and without stopping at a match, so the time says neither
 * which token matched, nor how long the tokens are, nor how much of one a
 * guess got right.
 */
#include "cp-token-auth-provider.h"

#include <string.h>

#include "cp-secret-private.h"

#define DIGEST_SIZE 32   /* SHA-256 */
#define DEFAULT_API_KEY_HEADER "X-API-Key"

typedef struct {
  guint8 digest[DIGEST_SIZE];
  char *principal;
} TokenEntry;

struct _CpTokenAuthProvider
{
  CpAuthProvider parent_instance;

  char *header;
  gboolean bearer;          /* the value is "Bearer <token>" */

  GMutex lock;              /* guards tokens: they may rotate from any thread */
  GArray *tokens;           /* TokenEntry */

  CpAuthVerifyFunc verify;
  gpointer verify_data;
  GDestroyNotify verify_destroy;
};

G_DEFINE_FINAL_TYPE (CpTokenAuthProvider, cp_token_auth_provider, CP_TYPE_AUTH_PROVIDER)

enum {
  PROP_0,
  PROP_HEADER,
  PROP_BEARER,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
token_entry_clear (gpointer data)
{
  TokenEntry *entry = data;

  g_free (entry->principal);
}

static void
digest_of (const char *credential,
           guint8      digest[DIGEST_SIZE])
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize len = DIGEST_SIZE;

  g_checksum_update (checksum, (const guchar *) credential, -1);
  g_checksum_get_digest (checksum, digest, &len);
  g_assert (len == DIGEST_SIZE);
}

/* The credential in @value, or NULL when it is not of our kind (skip).
 * An empty string means "ours, but empty" (reject). */
static const char *
extract_credential (CpTokenAuthProvider *self,
                    const char          *value)
{
  if (!self->bearer)
    {
      while (*value == ' ' || *value == '\t')
        value++;
      return value;
    }

  /* RFC 6750: "Bearer" (any case), one or more spaces, the token. */
  if (g_ascii_strncasecmp (value, "Bearer", 6) != 0 ||
      (value[6] != ' ' && value[6] != '\t' && value[6] != '\0'))
    return NULL;
  value += 6;
  while (*value == ' ' || *value == '\t')
    value++;
  return value;
}

/* Looks @credential up in the token set: a principal, or NULL. */
static char *
lookup_token (CpTokenAuthProvider *self,
              const char          *credential)
{
  guint8 digest[DIGEST_SIZE];
  gsize found = 0;
  gboolean any = FALSE;
  char *principal = NULL;

  digest_of (credential, digest);
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->tokens->len; i++)
    {
      const TokenEntry *entry = &g_array_index (self->tokens, TokenEntry, i);
      gboolean equal = cp_secret_equal (digest, entry->digest, DIGEST_SIZE);
      gsize mask = (gsize) 0 - (gsize) equal;

      /* Every entry is compared; the match is selected without a branch. */
      found = (found & ~mask) | (i & mask);
      any |= equal;
    }
  if (any)
    principal = g_strdup (g_array_index (self->tokens, TokenEntry, found).principal);
  g_mutex_unlock (&self->lock);
  memset (digest, 0, sizeof digest);
  return principal;
}

static CpAuthResult
cp_token_auth_provider_authenticate (CpAuthProvider  *provider,
                                     CpInvocation    *invocation,
                                     char           **principal,
                                     GError         **error)
{
  CpTokenAuthProvider *self = CP_TOKEN_AUTH_PROVIDER (provider);
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  /* All values joined: a second header makes the credential wrong. */
  const char *value = soup_message_headers_get_list (headers, self->header);
  const char *credential;
  g_autofree char *who = NULL;
  gboolean accepted;

  if (value == NULL)
    return CP_AUTH_RESULT_SKIP;
  credential = extract_credential (self, value);
  if (credential == NULL)
    return CP_AUTH_RESULT_SKIP;
  if (*credential == '\0')
    return CP_AUTH_RESULT_REJECT;

  /* The token set first, then the function. */
  who = lookup_token (self, credential);
  accepted = who != NULL;
  if (!accepted && self->verify != NULL)
    {
      accepted = self->verify (credential, &who, self->verify_data);
      if (!accepted)
        g_clear_pointer (&who, g_free);
    }
  if (!accepted)
    return CP_AUTH_RESULT_REJECT;

  *principal = g_steal_pointer (&who);
  return CP_AUTH_RESULT_ACCEPT;
}

static void
cp_token_auth_provider_finalize (GObject *object)
{
  CpTokenAuthProvider *self = CP_TOKEN_AUTH_PROVIDER (object);

  if (self->verify_destroy != NULL)
    self->verify_destroy (self->verify_data);
  g_array_unref (self->tokens);
  g_mutex_clear (&self->lock);
  g_free (self->header);

  G_OBJECT_CLASS (cp_token_auth_provider_parent_class)->finalize (object);
}

static void
cp_token_auth_provider_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  CpTokenAuthProvider *self = CP_TOKEN_AUTH_PROVIDER (object);

  switch (prop_id)
    {
    case PROP_HEADER:
      g_value_set_string (value, self->header);
      break;
    case PROP_BEARER:
      g_value_set_boolean (value, self->bearer);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_token_auth_provider_set_property (GObject      *object,
                                     guint         prop_id,
                                     const GValue *value,
                                     GParamSpec   *pspec)
{
  CpTokenAuthProvider *self = CP_TOKEN_AUTH_PROVIDER (object);

  switch (prop_id)
    {
    case PROP_HEADER:
      g_free (self->header);
      self->header = g_value_dup_string (value);
      break;
    case PROP_BEARER:
      self->bearer = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_token_auth_provider_constructed (GObject *object)
{
  CpTokenAuthProvider *self = CP_TOKEN_AUTH_PROVIDER (object);

  G_OBJECT_CLASS (cp_token_auth_provider_parent_class)->constructed (object);
  if (self->header == NULL || *self->header == '\0')
    {
      g_free (self->header);
      self->header = g_strdup (self->bearer ? "Authorization" : DEFAULT_API_KEY_HEADER);
    }
}

static void
cp_token_auth_provider_class_init (CpTokenAuthProviderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  CpAuthProviderClass *provider_class = CP_AUTH_PROVIDER_CLASS (klass);

  object_class->constructed = cp_token_auth_provider_constructed;
  object_class->finalize = cp_token_auth_provider_finalize;
  object_class->get_property = cp_token_auth_provider_get_property;
  object_class->set_property = cp_token_auth_provider_set_property;
  provider_class->authenticate = cp_token_auth_provider_authenticate;

  /**
   * CpTokenAuthProvider:header:
   *
   * The request header that carries the credential: `Authorization` for
   * bearer tokens, `X-API-Key` by default for API keys. %NULL or empty
   * selects that default.
   */
  properties[PROP_HEADER] =
    g_param_spec_string ("header", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpTokenAuthProvider:bearer-scheme:
   *
   * Whether the header's value is `Bearer <token>` (RFC 6750; the scheme
   * name in any case). A value of another scheme (`Basic ...`) is not
   * this provider's: it skips. When %FALSE the whole value is the key.
   */
  properties[PROP_BEARER] =
    g_param_spec_boolean ("bearer-scheme", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_token_auth_provider_init (CpTokenAuthProvider *self)
{
  g_mutex_init (&self->lock);
  self->tokens = g_array_new (FALSE, TRUE, sizeof (TokenEntry));
  g_array_set_clear_func (self->tokens, token_entry_clear);
}

/**
 * CpTokenAuthProvider:
 *
 * The built-in [class@ConnectPlugin.AuthProvider] for shared secrets: a
 * bearer token in `Authorization: Bearer <token>`
 * ([ctor@ConnectPlugin.TokenAuthProvider.new_bearer]) or an API key in a
 * header of its own ([ctor@ConnectPlugin.TokenAuthProvider.new_api_key]).
 *
 * A credential is valid when it is in the provider's token set
 * ([method@ConnectPlugin.TokenAuthProvider.add_token], each token mapped
 * to its principal) or, failing that, when the verify function
 * ([method@ConnectPlugin.TokenAuthProvider.set_verify_func]) says so. With
 * neither, every credential is rejected. The token set is compared in
 * constant time over all its entries; it may change while the server
 * runs, from any thread (token rotation).
 *
 * The provider skips calls without its header (and, for bearer tokens,
 * calls whose `Authorization` is of another scheme), and rejects calls
 * whose credential is empty or unknown. Several headers of its name are
 * read joined (`a, b`), which no valid credential matches.
 */

/**
 * cp_token_auth_provider_new_bearer:
 *
 * Creates a provider for bearer tokens (`Authorization: Bearer <token>`),
 * with the scheme `bearer`.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.TokenAuthProvider]
 */
CpAuthProvider *
cp_token_auth_provider_new_bearer (void)
{
  return g_object_new (CP_TYPE_TOKEN_AUTH_PROVIDER,
                       "header", "Authorization",
                       "bearer-scheme", TRUE,
                       "scheme", "bearer",
                       NULL);
}

/**
 * cp_token_auth_provider_new_api_key:
 * @header: (nullable): the header that carries the key, or %NULL for
 *   `X-API-Key`
 *
 * Creates a provider for API keys (the whole value of @header), with the
 * scheme `api-key`.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.TokenAuthProvider]
 */
CpAuthProvider *
cp_token_auth_provider_new_api_key (const char *header)
{
  return g_object_new (CP_TYPE_TOKEN_AUTH_PROVIDER,
                       "header", header,
                       "bearer-scheme", FALSE,
                       "scheme", "api-key",
                       NULL);
}

/**
 * cp_token_auth_provider_get_header:
 * @provider: a [class@ConnectPlugin.TokenAuthProvider]
 *
 * Gets [property@ConnectPlugin.TokenAuthProvider:header].
 *
 * Returns: (transfer none): the header's name
 */
const char *
cp_token_auth_provider_get_header (CpTokenAuthProvider *provider)
{
  g_return_val_if_fail (CP_IS_TOKEN_AUTH_PROVIDER (provider), NULL);
  return provider->header;
}

/**
 * cp_token_auth_provider_get_bearer_scheme:
 * @provider: a [class@ConnectPlugin.TokenAuthProvider]
 *
 * Gets [property@ConnectPlugin.TokenAuthProvider:bearer-scheme].
 *
 * Returns: whether the header carries `Bearer <token>`
 */
gboolean
cp_token_auth_provider_get_bearer_scheme (CpTokenAuthProvider *provider)
{
  g_return_val_if_fail (CP_IS_TOKEN_AUTH_PROVIDER (provider), FALSE);
  return provider->bearer;
}

/**
 * cp_token_auth_provider_add_token:
 * @provider: a [class@ConnectPlugin.TokenAuthProvider]
 * @token: a valid credential (not empty)
 * @principal: who presents it
 *
 * Adds @token to the token set: calls that present it are accepted as
 * @principal. Adding a token again changes its principal. Only a digest
 * of @token is kept.
 */
void
cp_token_auth_provider_add_token (CpTokenAuthProvider *provider,
                                  const char          *token,
                                  const char          *principal)
{
  TokenEntry entry;

  g_return_if_fail (CP_IS_TOKEN_AUTH_PROVIDER (provider));
  g_return_if_fail (token != NULL && *token != '\0');
  g_return_if_fail (principal != NULL);

  digest_of (token, entry.digest);
  entry.principal = g_strdup (principal);

  g_mutex_lock (&provider->lock);
  for (guint i = 0; i < provider->tokens->len; i++)
    {
      TokenEntry *old = &g_array_index (provider->tokens, TokenEntry, i);

      if (memcmp (old->digest, entry.digest, DIGEST_SIZE) == 0)
        {
          g_free (old->principal);
          old->principal = g_steal_pointer (&entry.principal);
          break;
        }
    }
  if (entry.principal != NULL)
    g_array_append_val (provider->tokens, entry);
  g_mutex_unlock (&provider->lock);
}

/**
 * cp_token_auth_provider_remove_token:
 * @provider: a [class@ConnectPlugin.TokenAuthProvider]
 * @token: a token given to [method@ConnectPlugin.TokenAuthProvider.add_token]
 *
 * Removes @token from the token set: calls already accepted keep their
 * principal, later calls that present it are rejected.
 *
 * Returns: whether @token was in the set
 */
gboolean
cp_token_auth_provider_remove_token (CpTokenAuthProvider *provider,
                                     const char          *token)
{
  guint8 digest[DIGEST_SIZE];
  gboolean removed = FALSE;

  g_return_val_if_fail (CP_IS_TOKEN_AUTH_PROVIDER (provider), FALSE);
  g_return_val_if_fail (token != NULL, FALSE);

  digest_of (token, digest);
  g_mutex_lock (&provider->lock);
  for (guint i = 0; i < provider->tokens->len && !removed; i++)
    if (memcmp (g_array_index (provider->tokens, TokenEntry, i).digest, digest, DIGEST_SIZE) == 0)
      {
        g_array_remove_index_fast (provider->tokens, i);
        removed = TRUE;
      }
  g_mutex_unlock (&provider->lock);
  return removed;
}

/**
 * cp_token_auth_provider_set_verify_func:
 * @provider: a [class@ConnectPlugin.TokenAuthProvider]
 * @func: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   checks credentials the token set does not hold, or %NULL to check the
 *   token set alone
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data when @func is replaced or the
 *   provider finalized
 *
 * Sets the function that checks the credentials the token set does not
 * hold (tokens from a database, signed tokens). A comparison it makes
 * with a secret should be constant-time too. Set it before the server
 * serves calls.
 */
void
cp_token_auth_provider_set_verify_func (CpTokenAuthProvider *provider,
                                        CpAuthVerifyFunc     func,
                                        gpointer             user_data,
                                        GDestroyNotify       destroy)
{
  GDestroyNotify old_destroy;
  gpointer old_data;

  g_return_if_fail (CP_IS_TOKEN_AUTH_PROVIDER (provider));

  old_destroy = provider->verify_destroy;
  old_data = provider->verify_data;
  provider->verify = func;
  provider->verify_data = user_data;
  provider->verify_destroy = destroy;
  if (old_destroy != NULL)
    old_destroy (old_data);
}
