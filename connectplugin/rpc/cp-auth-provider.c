/* cp-auth-provider.c: one way of authenticating the caller of a call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-auth-provider.h"

/**
 * CpAuthProvider:
 *
 * One way a caller proves who it is, asked by a
 * [class@ConnectPlugin.AuthInterceptor] about every call it does not let
 * through as public.
 *
 * A provider looks for its own kind of credential in the request headers.
 * Without one it skips ([enum@ConnectPlugin.AuthResult]), so that several
 * providers compose: the interceptor asks them in order and the first
 * that accepts names the principal. A provider that finds its credential
 * invalid rejects, and the call fails even if a later provider would
 * have accepted another credential of the same call.
 *
 * [class@ConnectPlugin.TokenAuthProvider] is the built-in provider for
 * bearer tokens and API keys; subclass this class (in C or, through
 * introspection, in Python) for other schemes.
 */

typedef struct {
  char *scheme;
} CpAuthProviderPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (CpAuthProvider, cp_auth_provider, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_SCHEME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static CpAuthResult
cp_auth_provider_real_authenticate (CpAuthProvider  *self,
                                    CpInvocation    *invocation,
                                    char           **principal,
                                    GError         **error)
{
  return CP_AUTH_RESULT_SKIP;
}

static void
cp_auth_provider_finalize (GObject *object)
{
  CpAuthProviderPrivate *priv = cp_auth_provider_get_instance_private (CP_AUTH_PROVIDER (object));

  g_free (priv->scheme);
  G_OBJECT_CLASS (cp_auth_provider_parent_class)->finalize (object);
}

static void
cp_auth_provider_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  CpAuthProviderPrivate *priv = cp_auth_provider_get_instance_private (CP_AUTH_PROVIDER (object));

  switch (prop_id)
    {
    case PROP_SCHEME:
      g_value_set_string (value, priv->scheme);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_auth_provider_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  CpAuthProviderPrivate *priv = cp_auth_provider_get_instance_private (CP_AUTH_PROVIDER (object));

  switch (prop_id)
    {
    case PROP_SCHEME:
      g_free (priv->scheme);
      priv->scheme = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_auth_provider_class_init (CpAuthProviderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cp_auth_provider_finalize;
  object_class->get_property = cp_auth_provider_get_property;
  object_class->set_property = cp_auth_provider_set_property;
  klass->authenticate = cp_auth_provider_real_authenticate;

  /**
   * CpAuthProvider:scheme:
   *
   * The name of the provider's scheme, recorded on the invocations it
   * accepts ([method@ConnectPlugin.Invocation.get_auth_scheme]) and used in
   * the messages of the calls it rejects: `bearer`, `api-key`, or a name
   * of the subclass's choosing.
   */
  properties[PROP_SCHEME] =
    g_param_spec_string ("scheme", NULL, NULL, "custom",
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_auth_provider_init (CpAuthProvider *self)
{
}

/**
 * cp_auth_provider_get_scheme:
 * @provider: a [class@ConnectPlugin.AuthProvider]
 *
 * Gets [property@ConnectPlugin.AuthProvider:scheme].
 *
 * Returns: (transfer none): the scheme's name
 */
const char *
cp_auth_provider_get_scheme (CpAuthProvider *provider)
{
  CpAuthProviderPrivate *priv;

  g_return_val_if_fail (CP_IS_AUTH_PROVIDER (provider), NULL);
  priv = cp_auth_provider_get_instance_private (provider);
  return priv->scheme;
}

/**
 * cp_auth_provider_authenticate:
 * @provider: a [class@ConnectPlugin.AuthProvider]
 * @invocation: the call to authenticate
 * @principal: (out) (transfer full) (optional) (nullable): the caller's
 *   principal, set when %CP_AUTH_RESULT_ACCEPT is returned
 * @error: return location for an error, set (optionally) with
 *   %CP_AUTH_RESULT_REJECT
 *
 * Asks @provider about @invocation
 * ([vfunc@ConnectPlugin.AuthProvider.authenticate]). A provider that
 * accepts without naming anyone yields the empty principal `""`; one that
 * sets an error rejects, whatever it returns (so an override in a
 * language with exceptions rejects by raising one).
 *
 * Returns: the decision
 */
CpAuthResult
cp_auth_provider_authenticate (CpAuthProvider  *provider,
                               CpInvocation    *invocation,
                               char           **principal,
                               GError         **error)
{
  g_autofree char *who = NULL;
  GError *local_error = NULL;
  CpAuthResult result;

  g_return_val_if_fail (CP_IS_AUTH_PROVIDER (provider), CP_AUTH_RESULT_REJECT);
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), CP_AUTH_RESULT_REJECT);
  g_return_val_if_fail (error == NULL || *error == NULL, CP_AUTH_RESULT_REJECT);

  result = CP_AUTH_PROVIDER_GET_CLASS (provider)->authenticate (provider, invocation, &who,
                                                                &local_error);
  /* An error rejects, whatever the result (a Python override that raises
   * returns 0, SKIP); only a rejection carries an error. */
  if (local_error != NULL)
    result = CP_AUTH_RESULT_REJECT;
  if (result == CP_AUTH_RESULT_ACCEPT && who == NULL)
    who = g_strdup ("");
  else if (result != CP_AUTH_RESULT_ACCEPT)
    g_clear_pointer (&who, g_free);
  if (local_error != NULL)
    g_propagate_error (error, local_error);
  if (principal != NULL)
    *principal = g_steal_pointer (&who);
  return result;
}
