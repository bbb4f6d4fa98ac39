/* cp-auth-interceptor.c: authenticates the calls a server serves
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A synchronous CpServerInterceptor (it overrides intercept only, so the
 * engine calls it without a GTask): public procedures pass untouched;
 * otherwise the providers are asked in order until one accepts (the
 * principal goes on the invocation) or rejects (the call is answered
 * `unauthenticated`). Messages name the scheme, never the credential.
 */
#include "cp-auth-interceptor.h"

#include <string.h>

#include "cp-error.h"

struct _CpAuthInterceptor
{
  CpServerInterceptor parent_instance;

  GPtrArray *providers;        /* CpAuthProvider, in the order asked */
  GHashTable *public_exact;    /* procedure → itself */
  GPtrArray *public_prefixes;  /* "/pkg.Service/" of the patterns ending in "/" "*" */
  gboolean allow_anonymous;
};

G_DEFINE_FINAL_TYPE (CpAuthInterceptor, cp_auth_interceptor, CP_TYPE_SERVER_INTERCEPTOR)

enum {
  PROP_0,
  PROP_ALLOW_ANONYMOUS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* A provider's rejection: its own CP_ERROR, or `unauthenticated`. */
static gboolean
rejected (CpAuthProvider  *provider,
          GError          *provider_error,
          GError         **error)
{
  if (provider_error != NULL && provider_error->domain == CP_ERROR)
    {
      g_propagate_error (error, provider_error);
      return FALSE;
    }
  g_clear_error (&provider_error);
  g_set_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED, "invalid %s credentials",
               cp_auth_provider_get_scheme (provider));
  return FALSE;
}

static gboolean
cp_auth_interceptor_intercept (CpServerInterceptor  *interceptor,
                               CpInvocation         *invocation,
                               CpMessage            *request,
                               GError              **error)
{
  CpAuthInterceptor *self = CP_AUTH_INTERCEPTOR (interceptor);

  if (cp_auth_interceptor_is_public (self, cp_invocation_get_procedure (invocation)))
    return TRUE;

  for (guint i = 0; i < self->providers->len; i++)
    {
      CpAuthProvider *provider = self->providers->pdata[i];
      g_autofree char *principal = NULL;
      GError *provider_error = NULL;

      switch (cp_auth_provider_authenticate (provider, invocation, &principal, &provider_error))
        {
        case CP_AUTH_RESULT_ACCEPT:
          cp_invocation_set_principal (invocation, principal, cp_auth_provider_get_scheme (provider));
          return TRUE;
        case CP_AUTH_RESULT_REJECT:
          return rejected (provider, provider_error, error);
        case CP_AUTH_RESULT_SKIP:
        default:
          break;
        }
    }

  if (self->allow_anonymous)
    return TRUE;
  g_set_error_literal (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED, "missing credentials");
  return FALSE;
}

static void
cp_auth_interceptor_finalize (GObject *object)
{
  CpAuthInterceptor *self = CP_AUTH_INTERCEPTOR (object);

  g_ptr_array_unref (self->providers);
  g_hash_table_unref (self->public_exact);
  g_ptr_array_unref (self->public_prefixes);

  G_OBJECT_CLASS (cp_auth_interceptor_parent_class)->finalize (object);
}

static void
cp_auth_interceptor_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  CpAuthInterceptor *self = CP_AUTH_INTERCEPTOR (object);

  switch (prop_id)
    {
    case PROP_ALLOW_ANONYMOUS:
      g_value_set_boolean (value, self->allow_anonymous);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_auth_interceptor_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  CpAuthInterceptor *self = CP_AUTH_INTERCEPTOR (object);

  switch (prop_id)
    {
    case PROP_ALLOW_ANONYMOUS:
      cp_auth_interceptor_set_allow_anonymous (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_auth_interceptor_class_init (CpAuthInterceptorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  CpServerInterceptorClass *interceptor_class = CP_SERVER_INTERCEPTOR_CLASS (klass);

  object_class->finalize = cp_auth_interceptor_finalize;
  object_class->get_property = cp_auth_interceptor_get_property;
  object_class->set_property = cp_auth_interceptor_set_property;
  interceptor_class->intercept = cp_auth_interceptor_intercept;

  /**
   * CpAuthInterceptor:allow-anonymous:
   *
   * Whether a call that no provider accepts or rejects (it carries no
   * credential any provider knows) goes on without a principal, for the
   * handler to decide. When %FALSE (the default) such a call is answered
   * `unauthenticated`. A rejected credential fails the call either way.
   */
  properties[PROP_ALLOW_ANONYMOUS] =
    g_param_spec_boolean ("allow-anonymous", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_auth_interceptor_init (CpAuthInterceptor *self)
{
  self->providers = g_ptr_array_new_with_free_func (g_object_unref);
  self->public_exact = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->public_prefixes = g_ptr_array_new_with_free_func (g_free);
}

/**
 * CpAuthInterceptor:
 *
 * A [class@ConnectPlugin.ServerInterceptor] that authenticates every call
 * before its handler runs, with an ordered list of
 * [class@ConnectPlugin.AuthProvider]s.
 *
 * For each call the providers are asked in the order they were added. The
 * first that accepts wins: its principal and scheme go on the invocation
 * ([method@ConnectPlugin.Invocation.get_principal],
 * [method@ConnectPlugin.Invocation.get_auth_scheme]) and the call goes on.
 * A provider that skips (no credential of its kind) passes the call to
 * the next one. A provider that rejects (its credential is present but
 * not valid) ends the call at once with `unauthenticated`, even if a
 * later provider would accept another credential the call carries: a
 * wrong credential is never silently replaced by another one. When every
 * provider skips, the call is answered `unauthenticated` ("missing
 * credentials") unless [property@ConnectPlugin.AuthInterceptor:allow-anonymous]
 * is set. Error messages name the scheme, never the credential.
 *
 * Public procedures ([method@ConnectPlugin.AuthInterceptor.add_public_procedure])
 * are not authenticated at all: health checks, a plugin's handshake.
 *
 * Install it with [method@ConnectPlugin.RpcServer.add_interceptor] or
 * [method@ConnectPlugin.Server.add_interceptor], after adding its providers
 * and public procedures, before the server serves calls. The client side
 * is [class@ConnectPlugin.CredentialsInterceptor].
 */

/**
 * cp_auth_interceptor_new:
 *
 * Creates an interceptor with no providers (it answers every call that is
 * not public `unauthenticated`, until providers are added).
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.AuthInterceptor]
 */
CpAuthInterceptor *
cp_auth_interceptor_new (void)
{
  return g_object_new (CP_TYPE_AUTH_INTERCEPTOR, NULL);
}

/**
 * cp_auth_interceptor_add_provider:
 * @interceptor: a [class@ConnectPlugin.AuthInterceptor]
 * @provider: a provider, asked after those added before it
 *
 * Appends @provider to the providers the interceptor asks.
 */
void
cp_auth_interceptor_add_provider (CpAuthInterceptor *interceptor,
                                  CpAuthProvider    *provider)
{
  g_return_if_fail (CP_IS_AUTH_INTERCEPTOR (interceptor));
  g_return_if_fail (CP_IS_AUTH_PROVIDER (provider));

  g_ptr_array_add (interceptor->providers, g_object_ref (provider));
}

/**
 * cp_auth_interceptor_add_public_procedure:
 * @interceptor: a [class@ConnectPlugin.AuthInterceptor]
 * @pattern: a procedure (`/grpc.health.v1.Health/Check`), or a service
 *   followed by a slash and an asterisk for all its procedures
 *
 * Lets the calls of @pattern through without authentication (and without
 * a principal). A pattern that ends with a slash and `*` covers every
 * method of that service (`/grpc.health.v1.Health/` and `*`: `Check`,
 * `Watch`), and nothing else.
 */
void
cp_auth_interceptor_add_public_procedure (CpAuthInterceptor *interceptor,
                                          const char        *pattern)
{
  gsize len;

  g_return_if_fail (CP_IS_AUTH_INTERCEPTOR (interceptor));
  g_return_if_fail (pattern != NULL && pattern[0] == '/');

  len = strlen (pattern);
  if (len >= 2 && pattern[len - 1] == '*' && pattern[len - 2] == '/')
    g_ptr_array_add (interceptor->public_prefixes, g_strndup (pattern, len - 1));
  else
    g_hash_table_add (interceptor->public_exact, g_strdup (pattern));
}

/**
 * cp_auth_interceptor_is_public:
 * @interceptor: a [class@ConnectPlugin.AuthInterceptor]
 * @procedure: a procedure, e.g. `/kv.v1.KVService/Get`
 *
 * Tells whether calls of @procedure skip authentication
 * ([method@ConnectPlugin.AuthInterceptor.add_public_procedure]).
 *
 * Returns: %TRUE when @procedure is public
 */
gboolean
cp_auth_interceptor_is_public (CpAuthInterceptor *interceptor,
                               const char        *procedure)
{
  g_return_val_if_fail (CP_IS_AUTH_INTERCEPTOR (interceptor), FALSE);
  g_return_val_if_fail (procedure != NULL, FALSE);

  if (g_hash_table_contains (interceptor->public_exact, procedure))
    return TRUE;
  for (guint i = 0; i < interceptor->public_prefixes->len; i++)
    {
      const char *prefix = interceptor->public_prefixes->pdata[i];

      /* "/svc/" covers "/svc/Method", not "/svc/" itself nor "/svc/a/b". */
      if (g_str_has_prefix (procedure, prefix) && procedure[strlen (prefix)] != '\0' &&
          strchr (procedure + strlen (prefix), '/') == NULL)
        return TRUE;
    }
  return FALSE;
}

/**
 * cp_auth_interceptor_set_allow_anonymous:
 * @interceptor: a [class@ConnectPlugin.AuthInterceptor]
 * @allow_anonymous: whether calls without any known credential go on
 *
 * Sets [property@ConnectPlugin.AuthInterceptor:allow-anonymous].
 */
void
cp_auth_interceptor_set_allow_anonymous (CpAuthInterceptor *interceptor,
                                         gboolean           allow_anonymous)
{
  g_return_if_fail (CP_IS_AUTH_INTERCEPTOR (interceptor));

  allow_anonymous = !!allow_anonymous;
  if (interceptor->allow_anonymous == allow_anonymous)
    return;
  interceptor->allow_anonymous = allow_anonymous;
  g_object_notify_by_pspec (G_OBJECT (interceptor), properties[PROP_ALLOW_ANONYMOUS]);
}

/**
 * cp_auth_interceptor_get_allow_anonymous:
 * @interceptor: a [class@ConnectPlugin.AuthInterceptor]
 *
 * Gets [property@ConnectPlugin.AuthInterceptor:allow-anonymous].
 *
 * Returns: whether calls without any known credential go on
 */
gboolean
cp_auth_interceptor_get_allow_anonymous (CpAuthInterceptor *interceptor)
{
  g_return_val_if_fail (CP_IS_AUTH_INTERCEPTOR (interceptor), FALSE);
  return interceptor->allow_anonymous;
}
