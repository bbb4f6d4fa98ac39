/* cp-plugin.c: a plugin: name, version, services, provides and requires
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-plugin.h"

#include <string.h>

#include "cp-error.h"

typedef struct {
  CpServiceDescriptor *descriptor;
  CpSkeleton *implementation;   /* nullable: host-side plugins have none */
} ServiceEntry;

struct _CpPlugin
{
  GObject parent_instance;

  char *name;
  char *version;
  GPtrArray *services;   /* ServiceEntry* */
  GPtrArray *provides;   /* CpServiceDeclaration* */
  GPtrArray *requires;   /* CpServiceDependency* */
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_VERSION,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CpPlugin, cp_plugin, G_TYPE_OBJECT)

static void
service_entry_free (gpointer data)
{
  ServiceEntry *entry = data;

  cp_service_descriptor_unref (entry->descriptor);
  g_clear_object (&entry->implementation);
  g_free (entry);
}

static ServiceEntry *
find_entry (CpPlugin   *self,
            const char *full_name,
            gboolean    without_implementation)
{
  for (guint i = 0; i < self->services->len; i++)
    {
      ServiceEntry *entry = self->services->pdata[i];

      if (without_implementation && entry->implementation != NULL)
        continue;
      if (g_strcmp0 (cp_service_descriptor_get_full_name (entry->descriptor), full_name) == 0)
        return entry;
    }
  return NULL;
}

static void
cp_plugin_finalize (GObject *object)
{
  CpPlugin *self = CP_PLUGIN (object);

  g_free (self->name);
  g_free (self->version);
  g_ptr_array_unref (self->services);
  g_ptr_array_unref (self->provides);
  g_ptr_array_unref (self->requires);

  G_OBJECT_CLASS (cp_plugin_parent_class)->finalize (object);
}

static void
cp_plugin_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  CpPlugin *self = CP_PLUGIN (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_VERSION:
      g_value_set_string (value, self->version);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_plugin_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  CpPlugin *self = CP_PLUGIN (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_free (self->name);
      self->name = g_value_dup_string (value);
      break;
    case PROP_VERSION:
      g_free (self->version);
      self->version = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_plugin_class_init (CpPluginClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cp_plugin_finalize;
  object_class->get_property = cp_plugin_get_property;
  object_class->set_property = cp_plugin_set_property;

  /**
   * CpPlugin:name:
   *
   * The plugin's name, the key a client asks for in the handshake
   * (`requested_plugins`), e.g. `kv`.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpPlugin:version:
   *
   * The plugin's version, e.g. `1.0.0`.
   */
  properties[PROP_VERSION] =
    g_param_spec_string ("version", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_plugin_init (CpPlugin *self)
{
  self->services = g_ptr_array_new_with_free_func (service_entry_free);
  self->provides = g_ptr_array_new_with_free_func (g_object_unref);
  self->requires = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * CpPlugin:
 *
 * A plugin: a name and version, the services it serves, and what it
 * provides to and requires from other plugins.
 *
 * On the plugin side, each service comes with its implementation, a
 * generated [class@ConnectPlugin.Skeleton] ([method@Plugin.add_service]); a [class@ConnectPlugin.Server] serves the
 * plugin. On the host side, a [class@ConnectPlugin.Plugin] describes what a client wants: the
 * name and the [struct@ConnectPlugin.ServiceDescriptor] of each service to dispense, without
 * implementation ([method@Plugin.add_service_descriptor]).
 */

/**
 * cp_plugin_new:
 * @name: the plugin's name
 * @version: (nullable): the plugin's version
 *
 * Creates a plugin with no services.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Plugin]
 */
CpPlugin *
cp_plugin_new (const char *name,
               const char *version)
{
  g_return_val_if_fail (name != NULL, NULL);

  return g_object_new (CP_TYPE_PLUGIN, "name", name, "version", version, NULL);
}

/**
 * cp_plugin_get_name:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Gets the plugin's name.
 *
 * Returns: (transfer none): the name
 */
const char *
cp_plugin_get_name (CpPlugin *plugin)
{
  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);
  return plugin->name;
}

/**
 * cp_plugin_get_version:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Gets the plugin's version.
 *
 * Returns: (transfer none) (nullable): the version
 */
const char *
cp_plugin_get_version (CpPlugin *plugin)
{
  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);
  return plugin->version;
}

/**
 * cp_plugin_add_service:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @implementation: a generated skeleton implementing one service
 *
 * Adds a service with its implementation. When a service of the same name
 * was added without implementation by
 * [method@Plugin.add_service_descriptor], @implementation completes it.
 */
void
cp_plugin_add_service (CpPlugin   *plugin,
                       CpSkeleton *implementation)
{
  CpServiceDescriptor *descriptor;
  ServiceEntry *entry;

  g_return_if_fail (CP_IS_PLUGIN (plugin));
  g_return_if_fail (CP_IS_SKELETON (implementation));

  descriptor = cp_skeleton_get_descriptor (implementation);
  g_return_if_fail (descriptor != NULL);

  entry = find_entry (plugin, cp_service_descriptor_get_full_name (descriptor), TRUE);
  if (entry == NULL)
    {
      entry = g_new0 (ServiceEntry, 1);
      entry->descriptor = cp_service_descriptor_ref (descriptor);
      g_ptr_array_add (plugin->services, entry);
    }
  entry->implementation = g_object_ref (implementation);
}

/**
 * cp_plugin_add_service_descriptor:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @descriptor: the service
 *
 * Adds a service without implementation: what a host wants to dispense,
 * or a service whose implementation [method@Plugin.add_service] adds later.
 * A [class@ConnectPlugin.Server] refuses to serve a plugin with a service left without
 * implementation.
 */
void
cp_plugin_add_service_descriptor (CpPlugin            *plugin,
                                  CpServiceDescriptor *descriptor)
{
  ServiceEntry *entry;

  g_return_if_fail (CP_IS_PLUGIN (plugin));
  g_return_if_fail (descriptor != NULL);

  entry = g_new0 (ServiceEntry, 1);
  entry->descriptor = cp_service_descriptor_ref (descriptor);
  g_ptr_array_add (plugin->services, entry);
}

/**
 * cp_plugin_get_descriptors:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Gets the services of @plugin, in the order they were added.
 *
 * Returns: (transfer container) (element-type CpServiceDescriptor): the
 *   services
 */
GPtrArray *
cp_plugin_get_descriptors (CpPlugin *plugin)
{
  GPtrArray *descriptors;

  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);

  descriptors = g_ptr_array_new_full (plugin->services->len,
                                      (GDestroyNotify) cp_service_descriptor_unref);
  for (guint i = 0; i < plugin->services->len; i++)
    {
      ServiceEntry *entry = plugin->services->pdata[i];
      g_ptr_array_add (descriptors, cp_service_descriptor_ref (entry->descriptor));
    }
  return descriptors;
}

/**
 * cp_plugin_lookup_descriptor:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @service_name: a full service name (`kv.v1.KVService`) or a service path
 *   (`/kv.v1.KVService/`)
 *
 * Finds one of the plugin's services by name.
 *
 * Returns: (transfer none) (nullable): the service, or %NULL
 */
CpServiceDescriptor *
cp_plugin_lookup_descriptor (CpPlugin   *plugin,
                             const char *service_name)
{
  g_autofree char *name = NULL;
  ServiceEntry *entry;

  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);
  g_return_val_if_fail (service_name != NULL, NULL);

  name = g_strdup (service_name[0] == '/' ? service_name + 1 : service_name);
  if (g_str_has_suffix (name, "/"))
    name[strlen (name) - 1] = '\0';
  entry = find_entry (plugin, name, FALSE);
  return entry != NULL ? entry->descriptor : NULL;
}

/**
 * cp_plugin_get_implementation:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @descriptor: one of the plugin's services
 *
 * Gets the skeleton implementing a service.
 *
 * Returns: (transfer none) (nullable): the implementation, or %NULL when
 *   the service has none (or is not one of the plugin's)
 */
CpSkeleton *
cp_plugin_get_implementation (CpPlugin            *plugin,
                              CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);
  g_return_val_if_fail (descriptor != NULL, NULL);

  for (guint i = 0; i < plugin->services->len; i++)
    {
      ServiceEntry *entry = plugin->services->pdata[i];

      if (entry->descriptor == descriptor && entry->implementation != NULL)
        return entry->implementation;
    }
  return NULL;
}

/**
 * cp_plugin_get_service_path:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Gets the name of the plugin's first service (`kv.v1.KVService`), as
 * reported in the handshake's `PluginInfo.service_path`. It is the bare
 * service name, as connect-plugin-go writes it; readers such as
 * [method@ConnectPlugin.Plugin.lookup_descriptor] also accept the older
 * `/kv.v1.KVService/` form.
 *
 * Returns: (transfer none) (nullable): the service name, or %NULL without
 *   services
 */
const char *
cp_plugin_get_service_path (CpPlugin *plugin)
{
  ServiceEntry *entry;

  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);

  if (plugin->services->len == 0)
    return NULL;
  entry = plugin->services->pdata[0];
  return cp_service_descriptor_get_full_name (entry->descriptor);
}

/**
 * cp_plugin_add_provides:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @type: the service type provided to other plugins, e.g. `cache`
 * @version: (nullable): its version
 * @path: (nullable): where it is served, e.g. `/cache.v1.Cache/`
 *
 * Declares a service the plugin provides (`ServiceDeclaration`). The path
 * is sent as given: it is the `endpoint_path` the plugin registers with its
 * host, which the host's router puts between the plugin's URL and the
 * method name, so connect-plugin-go's examples (and ours) write it
 * `/pkg.Service/`.
 */
void
cp_plugin_add_provides (CpPlugin   *plugin,
                        const char *type,
                        const char *version,
                        const char *path)
{
  CpServiceDeclaration *declaration;

  g_return_if_fail (CP_IS_PLUGIN (plugin));
  g_return_if_fail (type != NULL);

  declaration = cp_service_declaration_new ();
  cp_service_declaration_set_type_ (declaration, type);
  cp_service_declaration_set_version (declaration, version);
  cp_service_declaration_set_path (declaration, path);
  g_ptr_array_add (plugin->provides, declaration);
}

/**
 * cp_plugin_add_requires:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @type: the service type required, e.g. `logger`
 * @min_version: (nullable): the lowest acceptable version
 * @required_for_startup: whether the plugin cannot start without it
 * @watch_for_changes: whether the plugin wants to hear when it comes and goes
 *
 * Declares a service the plugin requires (`ServiceDependency`).
 */
void
cp_plugin_add_requires (CpPlugin   *plugin,
                        const char *type,
                        const char *min_version,
                        gboolean    required_for_startup,
                        gboolean    watch_for_changes)
{
  CpServiceDependency *dependency;

  g_return_if_fail (CP_IS_PLUGIN (plugin));
  g_return_if_fail (type != NULL);

  dependency = cp_service_dependency_new ();
  cp_service_dependency_set_type_ (dependency, type);
  cp_service_dependency_set_min_version (dependency, min_version);
  cp_service_dependency_set_required_for_startup (dependency, required_for_startup);
  cp_service_dependency_set_watch_for_changes (dependency, watch_for_changes);
  g_ptr_array_add (plugin->requires, dependency);
}

static GPtrArray *
copy_messages (GPtrArray *messages)
{
  GPtrArray *copy = g_ptr_array_new_full (messages->len, g_object_unref);

  for (guint i = 0; i < messages->len; i++)
    g_ptr_array_add (copy, cp_message_copy (messages->pdata[i]));
  return copy;
}

/**
 * cp_plugin_get_provides:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Gets the services the plugin provides.
 *
 * Returns: (transfer container) (element-type CpServiceDeclaration): copies
 *   of the declarations
 */
GPtrArray *
cp_plugin_get_provides (CpPlugin *plugin)
{
  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);
  return copy_messages (plugin->provides);
}

/**
 * cp_plugin_get_requires:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Gets the services the plugin requires.
 *
 * Returns: (transfer container) (element-type CpServiceDependency): copies
 *   of the dependencies
 */
GPtrArray *
cp_plugin_get_requires (CpPlugin *plugin)
{
  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);
  return copy_messages (plugin->requires);
}

/**
 * cp_plugin_to_info:
 * @plugin: a [class@ConnectPlugin.Plugin]
 *
 * Describes @plugin as the handshake does.
 *
 * Returns: (transfer full): a new `PluginInfo` message
 */
CpPluginInfo *
cp_plugin_to_info (CpPlugin *plugin)
{
  CpPluginInfo *info;

  g_return_val_if_fail (CP_IS_PLUGIN (plugin), NULL);

  info = cp_plugin_info_new ();
  cp_plugin_info_set_name (info, plugin->name);
  cp_plugin_info_set_version (info, plugin->version);
  cp_plugin_info_set_service_path (info, cp_plugin_get_service_path (plugin));
  cp_plugin_info_set_provides (info, plugin->provides);
  cp_plugin_info_set_requires_ (info, plugin->requires);
  return info;
}

/**
 * cp_plugin_validate:
 * @plugin: a [class@ConnectPlugin.Plugin]
 * @need_implementations: whether every service must have an implementation
 *   (a server's plugins)
 * @error: return location for a [struct@GLib.Error]
 *
 * Checks that @plugin has a name, that no service appears twice and, when
 * @need_implementations is set, that it serves at least one service and
 * each has an implementation. Errors are in the %CP_ERROR domain:
 * `invalid_argument` for names and duplicates, `unimplemented` for a
 * missing implementation.
 *
 * Returns: %TRUE when @plugin is valid
 */
gboolean
cp_plugin_validate (CpPlugin  *plugin,
                    gboolean   need_implementations,
                    GError   **error)
{
  g_autoptr(GHashTable) seen = NULL;

  g_return_val_if_fail (CP_IS_PLUGIN (plugin), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (plugin->name == NULL || plugin->name[0] == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "a plugin needs a name");
      return FALSE;
    }
  if (!g_utf8_validate (plugin->name, -1, NULL))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "plugin name is not valid UTF-8");
      return FALSE;
    }
  if (need_implementations && plugin->services->len == 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                   "plugin \"%s\" serves no service", plugin->name);
      return FALSE;
    }

  seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < plugin->services->len; i++)
    {
      ServiceEntry *entry = plugin->services->pdata[i];
      const char *full_name = cp_service_descriptor_get_full_name (entry->descriptor);

      if (!g_hash_table_add (seen, (gpointer) full_name))
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "plugin \"%s\": service %s added twice", plugin->name, full_name);
          return FALSE;
        }
      if (need_implementations && entry->implementation == NULL)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                       "plugin \"%s\": service %s has no implementation",
                       plugin->name, full_name);
          return FALSE;
        }
    }
  return TRUE;
}
