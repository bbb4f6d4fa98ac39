/* cp-skeleton.c: base class of generated service skeletons (server side)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-skeleton.h"

#include "cp-error.h"
#include "cp-rpc-server-private.h"

/**
 * CpSkeleton:
 *
 * The server side of one RPC service: the base class of the Skeleton
 * classes protoc-gen-cp generates (`KvKVServiceSkeleton`), as
 * [class@Gio.DBusInterfaceSkeleton] is for gdbus-codegen.
 *
 * A generated skeleton has a `handle-<method>` signal per method, whose
 * class handler is a virtual method: implement a service by connecting to
 * the signals, or by subclassing the skeleton (in C, Vala or Python) and
 * overriding the virtual methods. A handler receives the [class@ConnectPlugin.Invocation] and
 * the typed request, returns %TRUE, and answers now or later
 * (the generated `…_complete_<method>()`, [method@ConnectPlugin.Invocation.return_error], …);
 * a call nobody handles is answered `unimplemented`.
 *
 * [method@ConnectPlugin.Skeleton.export] serves every method of the service on a
 * [class@ConnectPlugin.RpcServer]. Calls are dispatched in the server's [struct@GLib.MainContext], which
 * must be the thread-default context of the caller of [method@ConnectPlugin.Skeleton.export]:
 * a skeleton is served where it was exported from. While exported, the
 * server keeps a reference on the skeleton.
 */

/* One method served on one server. The server owns one reference (released
 * by its destroy notify), the skeleton's list another. @skeleton is a strong
 * reference, held while the server serves the route and the skeleton did
 * not unexport it; @server is valid while @skeleton is set. */
typedef struct
{
  CpSkeleton   *skeleton;
  CpRpcServer  *server;
  CpMethodInfo *info;
} Route;

typedef struct
{
  GPtrArray *routes;  /* of Route (rc-box references) */
} CpSkeletonPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (CpSkeleton, cp_skeleton, G_TYPE_OBJECT)

static void
route_clear (gpointer data)
{
  Route *route = data;

  g_clear_object (&route->skeleton);
  g_clear_pointer (&route->info, cp_method_info_unref);
}

static void
route_release (gpointer data)
{
  g_rc_box_release_full (data, route_clear);
}

/* The server's destroy notify: the method is no longer served (replaced, or
 * the server is gone). */
static void
route_server_release (gpointer data)
{
  Route *route = data;

  route->server = NULL;
  g_clear_object (&route->skeleton);
  route_release (route);
}

static void
route_handle (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  Route *route = user_data;
  g_autoptr(CpSkeleton) skeleton = NULL;
  CpSkeletonClass *klass;

  if (route->skeleton == NULL)
    {
      cp_invocation_return_error (invocation, CP_ERROR_UNIMPLEMENTED,
                                  "%s is no longer served",
                                  cp_method_info_get_procedure (route->info));
      return;
    }

  skeleton = g_object_ref (route->skeleton);
  klass = CP_SKELETON_GET_CLASS (skeleton);
  if (klass->dispatch != NULL && klass->dispatch (skeleton, route->info, invocation, request))
    return;

  cp_invocation_return_error (invocation, CP_ERROR_UNIMPLEMENTED,
                              "%s.%s is not implemented",
                              cp_method_info_get_service_name (route->info),
                              cp_method_info_get_method_name (route->info));
}

static gboolean
route_is_alive (Route *route)
{
  return route->skeleton != NULL;
}

static void
prune_routes (CpSkeletonPrivate *priv)
{
  for (guint i = priv->routes->len; i > 0; i--)
    if (!route_is_alive (g_ptr_array_index (priv->routes, i - 1)))
      g_ptr_array_remove_index (priv->routes, i - 1);
}

static void
cp_skeleton_dispose (GObject *object)
{
  cp_skeleton_unexport (CP_SKELETON (object));

  G_OBJECT_CLASS (cp_skeleton_parent_class)->dispose (object);
}

static void
cp_skeleton_finalize (GObject *object)
{
  CpSkeletonPrivate *priv = cp_skeleton_get_instance_private (CP_SKELETON (object));

  g_ptr_array_unref (priv->routes);

  G_OBJECT_CLASS (cp_skeleton_parent_class)->finalize (object);
}

/**
 * CpSkeletonClass::dispatch:
 * @skeleton: the skeleton receiving the call
 * @method: the called method, one of the skeleton's service
 * @invocation: the call
 * @request: (nullable): the request of a unary or server-streaming call;
 *   %NULL for client-streaming and bidirectional-streaming calls (read
 *   them from @invocation)
 *
 * Hands one call to the implementation.
 *
 * Returns: %TRUE if the call was taken care of (answered now, or to be
 *   answered later), %FALSE to have it answered `unimplemented`
 */

static void
cp_skeleton_class_init (CpSkeletonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cp_skeleton_dispose;
  object_class->finalize = cp_skeleton_finalize;
}

static void
cp_skeleton_init (CpSkeleton *self)
{
  CpSkeletonPrivate *priv = cp_skeleton_get_instance_private (self);

  priv->routes = g_ptr_array_new_with_free_func (route_release);
}

/**
 * cp_skeleton_get_descriptor:
 * @skeleton: a [class@ConnectPlugin.Skeleton]
 *
 * Gets the description of the service the skeleton's class implements.
 *
 * Returns: (transfer none) (nullable): the descriptor, or %NULL for a class
 *   that was not bound to a service
 */
CpServiceDescriptor *
cp_skeleton_get_descriptor (CpSkeleton *skeleton)
{
  g_return_val_if_fail (CP_IS_SKELETON (skeleton), NULL);

  return CP_SKELETON_GET_CLASS (skeleton)->descriptor;
}

/**
 * cp_skeleton_class_set_descriptor:
 * @klass: a [struct@ConnectPlugin.SkeletonClass]
 * @descriptor: the service the class implements
 *
 * Binds a skeleton class to its service; generated code calls this in its
 * class_init. Subclasses inherit the binding.
 */
void
cp_skeleton_class_set_descriptor (CpSkeletonClass     *klass,
                                  CpServiceDescriptor *descriptor)
{
  g_return_if_fail (CP_IS_SKELETON_CLASS (klass));
  g_return_if_fail (descriptor != NULL);

  /* Classes are never finalized: the reference is kept for good. */
  klass->descriptor = cp_service_descriptor_ref (descriptor);
}

/**
 * cp_skeleton_export:
 * @skeleton: a [class@ConnectPlugin.Skeleton]
 * @server: the server to serve the service on
 * @error: return location for a [struct@GLib.Error]
 *
 * Serves every method of the skeleton's service on @server
 * ([method@ConnectPlugin.RpcServer.add_method]), replacing methods already served at the
 * same paths. Each call is dispatched to the skeleton's `handle-<method>`
 * signal in the server's [struct@GLib.MainContext]; calls nobody handles are answered
 * `unimplemented`.
 *
 * Call this from the thread-default context @server was created in; it
 * fails with %G_IO_ERROR_NOT_SUPPORTED otherwise, and with
 * %G_IO_ERROR_EXISTS if @skeleton is already exported on @server. A
 * skeleton may be exported on several servers.
 *
 * Returns: %TRUE on success
 */
gboolean
cp_skeleton_export (CpSkeleton   *skeleton,
                    CpRpcServer  *server,
                    GError      **error)
{
  CpSkeletonPrivate *priv;
  CpServiceDescriptor *descriptor;
  g_autoptr(GMainContext) context = NULL;
  GPtrArray *methods;

  g_return_val_if_fail (CP_IS_SKELETON (skeleton), FALSE);
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = cp_skeleton_get_instance_private (skeleton);
  descriptor = cp_skeleton_get_descriptor (skeleton);
  if (descriptor == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "%s is not bound to a service", G_OBJECT_TYPE_NAME (skeleton));
      return FALSE;
    }

  context = g_main_context_ref_thread_default ();
  if (context != cp_rpc_server_get_context (server))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "%s must be exported from the main context its server was created in",
                   cp_service_descriptor_get_full_name (descriptor));
      return FALSE;
    }

  prune_routes (priv);
  for (guint i = 0; i < priv->routes->len; i++)
    {
      Route *route = g_ptr_array_index (priv->routes, i);

      if (route->server == server)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                       "%s is already exported on this server",
                       cp_service_descriptor_get_full_name (descriptor));
          return FALSE;
        }
    }

  methods = cp_service_descriptor_get_methods (descriptor);
  for (guint i = 0; i < methods->len; i++)
    {
      Route *route = g_rc_box_new0 (Route);

      route->skeleton = g_object_ref (skeleton);
      route->server = server;
      route->info = cp_method_info_ref (g_ptr_array_index (methods, i));
      g_ptr_array_add (priv->routes, g_rc_box_acquire (route));
      cp_rpc_server_add_method (server, route->info, route_handle, route, route_server_release);
    }
  return TRUE;
}

/**
 * cp_skeleton_unexport:
 * @skeleton: a [class@ConnectPlugin.Skeleton]
 *
 * Stops serving @skeleton on every server it was exported on: calls
 * arriving afterwards are answered `unimplemented` (calls already running
 * are not affected). Does nothing if @skeleton is not exported.
 */
void
cp_skeleton_unexport (CpSkeleton *skeleton)
{
  CpSkeletonPrivate *priv;
  g_autoptr(GPtrArray) routes = NULL;

  g_return_if_fail (CP_IS_SKELETON (skeleton));

  priv = cp_skeleton_get_instance_private (skeleton);
  /* Releasing the routes' references may drop the last one on @skeleton
   * when called from dispose: detach the list first. */
  routes = g_steal_pointer (&priv->routes);
  priv->routes = g_ptr_array_new_with_free_func (route_release);
  for (guint i = 0; i < routes->len; i++)
    {
      Route *route = g_ptr_array_index (routes, i);

      route->server = NULL;
      g_clear_object (&route->skeleton);
    }
}

/**
 * cp_skeleton_is_exported:
 * @skeleton: a [class@ConnectPlugin.Skeleton]
 *
 * Tells whether @skeleton is served on at least one server.
 *
 * Returns: %TRUE if exported
 */
gboolean
cp_skeleton_is_exported (CpSkeleton *skeleton)
{
  CpSkeletonPrivate *priv;

  g_return_val_if_fail (CP_IS_SKELETON (skeleton), FALSE);

  priv = cp_skeleton_get_instance_private (skeleton);
  for (guint i = 0; i < priv->routes->len; i++)
    if (route_is_alive (g_ptr_array_index (priv->routes, i)))
      return TRUE;
  return FALSE;
}
