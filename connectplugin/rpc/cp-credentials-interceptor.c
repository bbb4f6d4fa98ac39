/* cp-credentials-interceptor.c: puts a bearer token or an API key on every call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-credentials-interceptor.h"

#include <string.h>

#define DEFAULT_API_KEY_HEADER "X-API-Key"

struct _CpCredentialsInterceptor
{
  CpClientInterceptor parent_instance;

  char *header;
  gboolean bearer;           /* the value is "Bearer <token>" */

  GMutex lock;               /* guards token: it may rotate from any thread */
  char *token;

  CpCredentialsFunc func;
  gpointer func_data;
  GDestroyNotify func_destroy;
};

G_DEFINE_FINAL_TYPE (CpCredentialsInterceptor, cp_credentials_interceptor, CP_TYPE_CLIENT_INTERCEPTOR)

enum {
  PROP_0,
  PROP_HEADER,
  PROP_BEARER,
  PROP_TOKEN,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Secrets do not stay in freed memory. */
static void
secret_free (char *secret)
{
  if (secret != NULL)
    memset (secret, 0, strlen (secret));
  g_free (secret);
}

static gboolean
cp_credentials_interceptor_intercept (CpClientInterceptor  *interceptor,
                                      CpClientCall         *call,
                                      GError              **error)
{
  CpCredentialsInterceptor *self = CP_CREDENTIALS_INTERCEPTOR (interceptor);
  SoupMessageHeaders *headers = cp_client_call_get_request_headers (call);
  char *credential;
  char *value;

  /* A header the call (or the channel) set explicitly wins. */
  if (soup_message_headers_get_one (headers, self->header) != NULL)
    return TRUE;

  if (self->func != NULL)
    credential = self->func (call, self->func_data);
  else
    {
      g_mutex_lock (&self->lock);
      credential = g_strdup (self->token);
      g_mutex_unlock (&self->lock);
    }
  if (credential == NULL || *credential == '\0')
    {
      secret_free (credential);
      return TRUE;
    }

  value = self->bearer ? g_strconcat ("Bearer ", credential, NULL) : g_strdup (credential);
  soup_message_headers_replace (headers, self->header, value);
  secret_free (value);
  secret_free (credential);
  return TRUE;
}

static void
cp_credentials_interceptor_finalize (GObject *object)
{
  CpCredentialsInterceptor *self = CP_CREDENTIALS_INTERCEPTOR (object);

  if (self->func_destroy != NULL)
    self->func_destroy (self->func_data);
  secret_free (self->token);
  g_mutex_clear (&self->lock);
  g_free (self->header);

  G_OBJECT_CLASS (cp_credentials_interceptor_parent_class)->finalize (object);
}

static void
cp_credentials_interceptor_get_property (GObject    *object,
                                         guint       prop_id,
                                         GValue     *value,
                                         GParamSpec *pspec)
{
  CpCredentialsInterceptor *self = CP_CREDENTIALS_INTERCEPTOR (object);

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
cp_credentials_interceptor_set_property (GObject      *object,
                                         guint         prop_id,
                                         const GValue *value,
                                         GParamSpec   *pspec)
{
  CpCredentialsInterceptor *self = CP_CREDENTIALS_INTERCEPTOR (object);

  switch (prop_id)
    {
    case PROP_HEADER:
      g_free (self->header);
      self->header = g_value_dup_string (value);
      break;
    case PROP_BEARER:
      self->bearer = g_value_get_boolean (value);
      break;
    case PROP_TOKEN:
      cp_credentials_interceptor_set_token (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_credentials_interceptor_constructed (GObject *object)
{
  CpCredentialsInterceptor *self = CP_CREDENTIALS_INTERCEPTOR (object);

  G_OBJECT_CLASS (cp_credentials_interceptor_parent_class)->constructed (object);
  if (self->header == NULL || *self->header == '\0')
    {
      g_free (self->header);
      self->header = g_strdup (self->bearer ? "Authorization" : DEFAULT_API_KEY_HEADER);
    }
}

static void
cp_credentials_interceptor_class_init (CpCredentialsInterceptorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  CpClientInterceptorClass *interceptor_class = CP_CLIENT_INTERCEPTOR_CLASS (klass);

  object_class->constructed = cp_credentials_interceptor_constructed;
  object_class->finalize = cp_credentials_interceptor_finalize;
  object_class->get_property = cp_credentials_interceptor_get_property;
  object_class->set_property = cp_credentials_interceptor_set_property;
  interceptor_class->intercept = cp_credentials_interceptor_intercept;

  /**
   * CpCredentialsInterceptor:header:
   *
   * The request header that carries the credential: `Authorization` for
   * bearer tokens, `X-API-Key` by default for API keys. %NULL or empty
   * selects that default.
   */
  properties[PROP_HEADER] =
    g_param_spec_string ("header", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCredentialsInterceptor:bearer-scheme:
   *
   * Whether the header's value is `Bearer <token>`; when %FALSE it is the
   * credential alone.
   */
  properties[PROP_BEARER] =
    g_param_spec_boolean ("bearer-scheme", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCredentialsInterceptor:token:
   *
   * The credential put on the calls (write-only: a secret is not read
   * back). See [method@ConnectPlugin.CredentialsInterceptor.set_token].
   */
  properties[PROP_TOKEN] =
    g_param_spec_string ("token", NULL, NULL, NULL,
                         G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_credentials_interceptor_init (CpCredentialsInterceptor *self)
{
  g_mutex_init (&self->lock);
}

/**
 * CpCredentialsInterceptor:
 *
 * A [class@ConnectPlugin.ClientInterceptor] that puts a credential on every
 * call it sees: a bearer token (`Authorization: Bearer <token>`) or an API
 * key in a header of its own. The server side is
 * [class@ConnectPlugin.AuthInterceptor].
 *
 * The credential is a fixed one, replaced at any time (from any thread)
 * with [method@ConnectPlugin.CredentialsInterceptor.set_token], or the
 * result of a function asked for every call
 * ([method@ConnectPlugin.CredentialsInterceptor.set_token_func]).
 *
 * A call that already carries the header — set in its
 * [class@ConnectPlugin.CallOptions] request headers, or by the channel —
 * keeps it: an explicit credential wins over the interceptor's. A call
 * for which there is no credential (no token, or the function returned
 * %NULL) is sent without one, and the server decides.
 *
 * Install it with [method@ConnectPlugin.Channel.add_interceptor],
 * [method@ConnectPlugin.Client.add_interceptor] or, for one call,
 * [method@ConnectPlugin.CallOptions.add_interceptor].
 */

/**
 * cp_credentials_interceptor_new_bearer:
 * @token: (nullable): the bearer token, or %NULL to set it later
 *
 * Creates an interceptor that sends `Authorization: Bearer @token`.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.CredentialsInterceptor]
 */
CpCredentialsInterceptor *
cp_credentials_interceptor_new_bearer (const char *token)
{
  return g_object_new (CP_TYPE_CREDENTIALS_INTERCEPTOR,
                       "header", "Authorization",
                       "bearer-scheme", TRUE,
                       "token", token,
                       NULL);
}

/**
 * cp_credentials_interceptor_new_api_key:
 * @header: (nullable): the header that carries the key, or %NULL for
 *   `X-API-Key`
 * @key: (nullable): the key, or %NULL to set it later
 *
 * Creates an interceptor that sends `@header: @key`.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.CredentialsInterceptor]
 */
CpCredentialsInterceptor *
cp_credentials_interceptor_new_api_key (const char *header,
                                        const char *key)
{
  return g_object_new (CP_TYPE_CREDENTIALS_INTERCEPTOR,
                       "header", header,
                       "bearer-scheme", FALSE,
                       "token", key,
                       NULL);
}

/**
 * cp_credentials_interceptor_get_header:
 * @interceptor: a [class@ConnectPlugin.CredentialsInterceptor]
 *
 * Gets [property@ConnectPlugin.CredentialsInterceptor:header].
 *
 * Returns: (transfer none): the header's name
 */
const char *
cp_credentials_interceptor_get_header (CpCredentialsInterceptor *interceptor)
{
  g_return_val_if_fail (CP_IS_CREDENTIALS_INTERCEPTOR (interceptor), NULL);
  return interceptor->header;
}

/**
 * cp_credentials_interceptor_set_token:
 * @interceptor: a [class@ConnectPlugin.CredentialsInterceptor]
 * @token: (nullable): the new credential, or %NULL for none
 *
 * Replaces the credential put on the calls from now on (a rotated token).
 * May be called from any thread. Has no effect while a function
 * ([method@ConnectPlugin.CredentialsInterceptor.set_token_func]) is set.
 */
void
cp_credentials_interceptor_set_token (CpCredentialsInterceptor *interceptor,
                                      const char               *token)
{
  char *old;

  g_return_if_fail (CP_IS_CREDENTIALS_INTERCEPTOR (interceptor));

  g_mutex_lock (&interceptor->lock);
  old = interceptor->token;
  interceptor->token = g_strdup (token);
  g_mutex_unlock (&interceptor->lock);
  secret_free (old);
}

/**
 * cp_credentials_interceptor_set_token_func:
 * @interceptor: a [class@ConnectPlugin.CredentialsInterceptor]
 * @func: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   gives the credential of each call, or %NULL to use the fixed token
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data when @func is replaced or the
 *   interceptor finalized
 *
 * Makes the interceptor ask @func for the credential of every call,
 * instead of using the fixed token. Set it before the interceptor is
 * installed.
 */
void
cp_credentials_interceptor_set_token_func (CpCredentialsInterceptor *interceptor,
                                           CpCredentialsFunc         func,
                                           gpointer                  user_data,
                                           GDestroyNotify            destroy)
{
  GDestroyNotify old_destroy;
  gpointer old_data;

  g_return_if_fail (CP_IS_CREDENTIALS_INTERCEPTOR (interceptor));

  old_destroy = interceptor->func_destroy;
  old_data = interceptor->func_data;
  interceptor->func = func;
  interceptor->func_data = user_data;
  interceptor->func_destroy = destroy;
  if (old_destroy != NULL)
    old_destroy (old_data);
}
