/* cp-static-discovery.c: a fixed list of plugin endpoints
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-static-discovery.h"
#include "cp-error.h"
#include "cp-host-private.h"

/**
 * CpStaticDiscovery:
 *
 * A [iface@Discovery] answering a fixed list of URLs (`http://host:port`,
 * `https://…`, `unix:/path`), e.g. the address of a plugin that is already
 * running. Every URL is assumed to serve every plugin.
 *
 * The secret such a plugin was started with (see
 * [property@Server:control-secret]), when the operator knows it, goes in
 * [property@StaticDiscovery:control-secret]: the host's PluginControl and
 * PluginIdentity calls carry it ([method@ConnectPlugin.Client.new_control_call_options]).
 */
struct _CpStaticDiscovery
{
  GObject parent_instance;

  GStrv urls;
  char *control_secret;
};

enum {
  PROP_0,
  PROP_URLS,
  PROP_CONTROL_SECRET,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void cp_static_discovery_iface_init (CpDiscoveryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpStaticDiscovery, cp_static_discovery, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (CP_TYPE_DISCOVERY,
                                                      cp_static_discovery_iface_init))

static void
cp_static_discovery_discover_async (CpDiscovery         *discovery,
                                    const char * const  *plugins,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  CpStaticDiscovery *self = CP_STATIC_DISCOVERY (discovery);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_static_discovery_discover_async);
  if (self->urls == NULL || self->urls[0] == NULL)
    g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE,
                             "no plugin endpoint configured");
  else
    g_task_return_pointer (task, g_strdupv (self->urls), (GDestroyNotify) g_strfreev);
}

static char **
cp_static_discovery_discover_finish (CpDiscovery   *discovery,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, discovery), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
cp_static_discovery_iface_init (CpDiscoveryInterface *iface)
{
  iface->discover_async = cp_static_discovery_discover_async;
  iface->discover_finish = cp_static_discovery_discover_finish;
}

static void
cp_static_discovery_finalize (GObject *object)
{
  CpStaticDiscovery *self = CP_STATIC_DISCOVERY (object);

  g_clear_pointer (&self->urls, g_strfreev);
  if (self->control_secret != NULL)
    explicit_bzero (self->control_secret, strlen (self->control_secret));
  g_clear_pointer (&self->control_secret, g_free);

  G_OBJECT_CLASS (cp_static_discovery_parent_class)->finalize (object);
}

static void
cp_static_discovery_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  CpStaticDiscovery *self = CP_STATIC_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_URLS:
      g_value_set_boxed (value, self->urls);
      break;
    case PROP_CONTROL_SECRET:
      g_value_set_string (value, self->control_secret);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_static_discovery_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  CpStaticDiscovery *self = CP_STATIC_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_URLS:
      cp_static_discovery_set_urls (self, g_value_get_boxed (value));
      break;
    case PROP_CONTROL_SECRET:
      g_free (self->control_secret);
      self->control_secret = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_static_discovery_class_init (CpStaticDiscoveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cp_static_discovery_finalize;
  object_class->get_property = cp_static_discovery_get_property;
  object_class->set_property = cp_static_discovery_set_property;

  /**
   * CpStaticDiscovery:urls:
   *
   * The endpoint URLs, best first. Changing them emits
   * [signal@Discovery::changed].
   */
  properties[PROP_URLS] =
    g_param_spec_boxed ("urls", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                        G_PARAM_STATIC_STRINGS);

  /**
   * CpStaticDiscovery:control-secret:
   *
   * The secret of the plugin's PluginControl and PluginIdentity services
   * (`Authorization: Bearer SECRET`), given by the operator; %NULL when
   * unknown.
   */
  properties[PROP_CONTROL_SECRET] =
    g_param_spec_string ("control-secret", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_static_discovery_init (CpStaticDiscovery *self)
{
}

/**
 * cp_static_discovery_new:
 * @urls: (array zero-terminated=1) (nullable): the endpoint URLs, best first
 *
 * Creates a discovery that always offers @urls.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.StaticDiscovery]
 */
CpStaticDiscovery *
cp_static_discovery_new (const char * const *urls)
{
  return g_object_new (CP_TYPE_STATIC_DISCOVERY, "urls", urls, NULL);
}

/**
 * cp_static_discovery_get_urls:
 * @self: a [class@ConnectPlugin.StaticDiscovery]
 *
 * Gets the endpoint URLs this discovery offers.
 *
 * Returns: (transfer none) (array zero-terminated=1) (nullable): the URLs
 */
const char * const *
cp_static_discovery_get_urls (CpStaticDiscovery *self)
{
  g_return_val_if_fail (CP_IS_STATIC_DISCOVERY (self), NULL);

  return (const char * const *) self->urls;
}

/**
 * cp_static_discovery_set_urls:
 * @self: a [class@ConnectPlugin.StaticDiscovery]
 * @urls: (array zero-terminated=1) (nullable): the new endpoint URLs
 *
 * Replaces the URLs and emits [signal@Discovery::changed] when they differ.
 */
void
cp_static_discovery_set_urls (CpStaticDiscovery  *self,
                              const char * const *urls)
{
  g_return_if_fail (CP_IS_STATIC_DISCOVERY (self));

  if (!cp_host_strv_replace (&self->urls, urls))
    return;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_URLS]);
  cp_discovery_emit_changed (CP_DISCOVERY (self));
}
