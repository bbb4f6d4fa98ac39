/* cp-method-info.c: describes one RPC method
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-method-info.h"

#include <string.h>

/**
 * CpMethodInfo:
 *
 * An immutable description of one RPC method: its procedure name
 * (`/pkg.Service/Method`), the service and method names taken from it, its
 * kind, its input and output message types and its idempotency level.
 *
 * Method infos are reference counted; generated code creates one per method
 * and passes it to [method@ConnectPlugin.RpcServer.add_method].
 */
struct _CpMethodInfo
{
  gatomicrefcount ref_count;
  char *procedure;
  char *service_name;
  char *method_name;
  CpMethodKind kind;
  GType input_type;
  GType output_type;
  CpIdempotency idempotency;
};

G_DEFINE_BOXED_TYPE (CpMethodInfo, cp_method_info, cp_method_info_ref, cp_method_info_unref)

static gboolean
procedure_is_valid (const char *procedure)
{
  const char *last_slash;

  if (procedure == NULL || procedure[0] != '/')
    return FALSE;
  last_slash = strrchr (procedure, '/');
  /* "/Service/Method": a non-empty service and a non-empty method. */
  return last_slash > procedure + 1 && last_slash[1] != '\0';
}

/**
 * cp_method_info_new:
 * @procedure: the procedure name, `/pkg.Service/Method`
 * @kind: the kind of RPC
 * @input_type: the [alias@GObject.Type] of the request message, a [class@ConnectPlugin.Message] subclass
 * @output_type: the [alias@GObject.Type] of the response message, a [class@ConnectPlugin.Message] subclass
 *
 * Creates a method description. The idempotency level starts as
 * %CP_IDEMPOTENCY_UNKNOWN; see [method@ConnectPlugin.MethodInfo.set_idempotency].
 *
 * Returns: (transfer full): a new [struct@ConnectPlugin.MethodInfo]
 */
CpMethodInfo *
cp_method_info_new (const char   *procedure,
                    CpMethodKind  kind,
                    GType         input_type,
                    GType         output_type)
{
  CpMethodInfo *info;
  const char *last_slash;

  g_return_val_if_fail (procedure_is_valid (procedure), NULL);
  g_return_val_if_fail (kind >= CP_METHOD_UNARY && kind <= CP_METHOD_BIDI_STREAMING, NULL);

  last_slash = strrchr (procedure, '/');

  info = g_new0 (CpMethodInfo, 1);
  g_atomic_ref_count_init (&info->ref_count);
  info->procedure = g_strdup (procedure);
  info->service_name = g_strndup (procedure + 1, last_slash - procedure - 1);
  info->method_name = g_strdup (last_slash + 1);
  info->kind = kind;
  info->input_type = input_type;
  info->output_type = output_type;
  info->idempotency = CP_IDEMPOTENCY_UNKNOWN;

  return info;
}

/**
 * cp_method_info_ref:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Acquires a reference on @info.
 *
 * Returns: (transfer full): @info
 */
CpMethodInfo *
cp_method_info_ref (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);

  g_atomic_ref_count_inc (&info->ref_count);
  return info;
}

/**
 * cp_method_info_unref:
 * @info: (transfer full): a [struct@ConnectPlugin.MethodInfo]
 *
 * Releases a reference on @info, freeing it when the last one is gone.
 */
void
cp_method_info_unref (CpMethodInfo *info)
{
  g_return_if_fail (info != NULL);

  if (!g_atomic_ref_count_dec (&info->ref_count))
    return;

  g_free (info->procedure);
  g_free (info->service_name);
  g_free (info->method_name);
  g_free (info);
}

/**
 * cp_method_info_get_procedure:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the procedure name, the URL path of the method without any routing
 * prefix, e.g. `/kv.v1.KVService/Get`.
 *
 * Returns: (transfer none): the procedure name
 */
const char *
cp_method_info_get_procedure (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->procedure;
}

/**
 * cp_method_info_get_service_name:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the fully-qualified service name, e.g. `kv.v1.KVService`.
 *
 * Returns: (transfer none): the service name
 */
const char *
cp_method_info_get_service_name (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->service_name;
}

/**
 * cp_method_info_get_method_name:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the method name, e.g. `Get`.
 *
 * Returns: (transfer none): the method name
 */
const char *
cp_method_info_get_method_name (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->method_name;
}

/**
 * cp_method_info_get_kind:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the kind of RPC.
 *
 * Returns: the [enum@ConnectPlugin.MethodKind]
 */
CpMethodKind
cp_method_info_get_kind (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, CP_METHOD_UNARY);
  return info->kind;
}

/**
 * cp_method_info_get_input_type:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the type of the request messages.
 *
 * Returns: a [class@ConnectPlugin.Message] subclass
 */
GType
cp_method_info_get_input_type (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, G_TYPE_INVALID);
  return info->input_type;
}

/**
 * cp_method_info_get_output_type:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the type of the response messages.
 *
 * Returns: a [class@ConnectPlugin.Message] subclass
 */
GType
cp_method_info_get_output_type (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, G_TYPE_INVALID);
  return info->output_type;
}

/**
 * cp_method_info_get_idempotency:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 *
 * Gets the method's idempotency level.
 *
 * Returns: the [enum@ConnectPlugin.Idempotency]
 */
CpIdempotency
cp_method_info_get_idempotency (CpMethodInfo *info)
{
  g_return_val_if_fail (info != NULL, CP_IDEMPOTENCY_UNKNOWN);
  return info->idempotency;
}

/**
 * cp_method_info_set_idempotency:
 * @info: a [struct@ConnectPlugin.MethodInfo]
 * @idempotency: the idempotency level
 *
 * Sets the method's idempotency level (the proto option
 * `idempotency_level`). Servers accept HTTP GET only for unary methods marked
 * %CP_IDEMPOTENCY_NO_SIDE_EFFECTS. Set it before registering the method.
 */
void
cp_method_info_set_idempotency (CpMethodInfo  *info,
                                CpIdempotency  idempotency)
{
  g_return_if_fail (info != NULL);
  info->idempotency = idempotency;
}
