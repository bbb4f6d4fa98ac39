/* cp-error.c: the Connect error model as a GError domain
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-error.h"
#include "cp-error-private.h"

/* Private data carried by every CP_ERROR GError (an extended error domain):
 * the details and the metadata travel with the error through g_error_copy(),
 * g_propagate_error() and GTask. */
typedef struct
{
  GPtrArray          *details;   /* (element-type CpErrorDetail) (owned) */
  SoupMessageHeaders *metadata;  /* (owned) (nullable): created on demand */
} CpErrorPrivate;

static void
cp_error_private_init (CpErrorPrivate *priv)
{
  priv->details = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_error_detail_unref);
  priv->metadata = NULL;
}

static SoupMessageHeaders *
copy_headers (SoupMessageHeaders *src)
{
  SoupMessageHeaders *dest = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, src);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    soup_message_headers_append (dest, name, value);

  return dest;
}

static void
cp_error_private_copy (const CpErrorPrivate *src,
                       CpErrorPrivate       *dest)
{
  for (guint i = 0; i < src->details->len; i++)
    g_ptr_array_add (dest->details, cp_error_detail_ref (g_ptr_array_index (src->details, i)));

  /* The headers are mutable: a copied error gets its own. */
  if (src->metadata != NULL)
    dest->metadata = copy_headers (src->metadata);
}

static void
cp_error_private_clear (CpErrorPrivate *priv)
{
  g_clear_pointer (&priv->details, g_ptr_array_unref);
  g_clear_pointer (&priv->metadata, soup_message_headers_unref);
}

/**
 * cp_error_quark:
 *
 * The error domain of Connect RPC errors.
 *
 * Returns: the [alias@GLib.Quark] of %CP_ERROR
 */
G_DEFINE_EXTENDED_ERROR (CpError, cp_error)

static const struct
{
  const char *name;
  guint       http_status;
} code_table[] = {
  [CP_ERROR_CANCELED]            = { "canceled", 499 },
  [CP_ERROR_UNKNOWN]             = { "unknown", 500 },
  [CP_ERROR_INVALID_ARGUMENT]    = { "invalid_argument", 400 },
  [CP_ERROR_DEADLINE_EXCEEDED]   = { "deadline_exceeded", 504 },
  [CP_ERROR_NOT_FOUND]           = { "not_found", 404 },
  [CP_ERROR_ALREADY_EXISTS]      = { "already_exists", 409 },
  [CP_ERROR_PERMISSION_DENIED]   = { "permission_denied", 403 },
  [CP_ERROR_RESOURCE_EXHAUSTED]  = { "resource_exhausted", 429 },
  [CP_ERROR_FAILED_PRECONDITION] = { "failed_precondition", 400 },
  [CP_ERROR_ABORTED]             = { "aborted", 409 },
  [CP_ERROR_OUT_OF_RANGE]        = { "out_of_range", 400 },
  [CP_ERROR_UNIMPLEMENTED]       = { "unimplemented", 501 },
  [CP_ERROR_INTERNAL]            = { "internal", 500 },
  [CP_ERROR_UNAVAILABLE]         = { "unavailable", 503 },
  [CP_ERROR_DATA_LOSS]           = { "data_loss", 500 },
  [CP_ERROR_UNAUTHENTICATED]     = { "unauthenticated", 401 },
};

static inline gboolean
code_is_valid (int code)
{
  return code >= CP_ERROR_CANCELED && code <= CP_ERROR_UNAUTHENTICATED;
}

/**
 * cp_error_code_to_string:
 * @code: a [error@ConnectPlugin.Error]
 *
 * Gets the wire name of @code, such as `invalid_argument`.
 *
 * Returns: (transfer none): the lower_snake name of @code, or `unknown` for a
 *   value that is not a Connect code
 */
const char *
cp_error_code_to_string (CpError code)
{
  if (!code_is_valid (code))
    return code_table[CP_ERROR_UNKNOWN].name;
  return code_table[code].name;
}

/**
 * cp_error_code_from_string:
 * @name: (nullable): a wire name such as `not_found`
 * @out_code: (out) (optional): return location for the code
 *
 * Looks up a Connect code by its wire name. Names are case-sensitive, as on
 * the wire.
 *
 * Returns: %TRUE if @name is one of the sixteen Connect codes
 */
gboolean
cp_error_code_from_string (const char  *name,
                           CpError     *out_code)
{
  if (name == NULL)
    return FALSE;

  for (int code = CP_ERROR_CANCELED; code <= CP_ERROR_UNAUTHENTICATED; code++)
    {
      if (strcmp (name, code_table[code].name) == 0)
        {
          if (out_code != NULL)
            *out_code = (CpError) code;
          return TRUE;
        }
    }

  return FALSE;
}

/**
 * cp_error_code_to_http_status:
 * @code: a [error@ConnectPlugin.Error]
 *
 * Gets the HTTP status a server answers a unary call failing with @code.
 *
 * Returns: the HTTP status (500 for a value that is not a Connect code)
 */
guint
cp_error_code_to_http_status (CpError code)
{
  if (!code_is_valid (code))
    return 500;
  return code_table[code].http_status;
}

/**
 * cp_error_code_from_http_status:
 * @http_status: an HTTP status
 *
 * Maps an HTTP status that came without a usable Connect error (no JSON
 * body, or a streaming call answered with a status other than 200) to a
 * code. This is not the inverse of [func@ConnectPlugin.Error.code_to_http_status].
 *
 * Returns: the [error@ConnectPlugin.Error] for @http_status
 */
CpError
cp_error_code_from_http_status (guint http_status)
{
  switch (http_status)
    {
    case 400:
      return CP_ERROR_INTERNAL;
    case 401:
      return CP_ERROR_UNAUTHENTICATED;
    case 403:
      return CP_ERROR_PERMISSION_DENIED;
    case 404:
      return CP_ERROR_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return CP_ERROR_UNAVAILABLE;
    default:
      return CP_ERROR_UNKNOWN;
    }
}

/**
 * cp_error_get_code:
 * @error: a [struct@GLib.Error]
 *
 * Gets the Connect code that @error stands for: its own code for a
 * %CP_ERROR error, `canceled` for %G_IO_ERROR_CANCELLED, `deadline_exceeded`
 * for %G_IO_ERROR_TIMED_OUT, `unknown` otherwise.
 *
 * Returns: the [error@ConnectPlugin.Error] of @error
 */
CpError
cp_error_get_code (const GError *error)
{
  g_return_val_if_fail (error != NULL, CP_ERROR_UNKNOWN);

  if (error->domain == CP_ERROR)
    return code_is_valid (error->code) ? (CpError) error->code : CP_ERROR_UNKNOWN;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return CP_ERROR_CANCELED;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return CP_ERROR_DEADLINE_EXCEEDED;
  return CP_ERROR_UNKNOWN;
}

GError *
cp_error_to_connect (const GError *error)
{
  g_return_val_if_fail (error != NULL, NULL);

  if (error->domain == CP_ERROR)
    return g_error_copy (error);
  return g_error_new_literal (CP_ERROR, cp_error_get_code (error),
                              error->message != NULL ? error->message : "");
}

/* CpErrorDetail */

struct _CpErrorDetail
{
  gatomicrefcount  ref_count;
  char            *type_name;
  GBytes          *value;
};

G_DEFINE_BOXED_TYPE (CpErrorDetail, cp_error_detail, cp_error_detail_ref, cp_error_detail_unref)

/**
 * cp_error_detail_new:
 * @type_name: the fully-qualified protobuf message name, such as
 *   `google.rpc.RetryInfo`; a `type.googleapis.com/` style prefix (anything
 *   up to the last `/`) is removed
 * @value: (nullable): the binary protobuf encoding of the message
 *
 * Creates an error detail.
 *
 * Returns: (transfer full): a new [struct@ConnectPlugin.ErrorDetail]
 */
CpErrorDetail *
cp_error_detail_new (const char *type_name,
                     GBytes     *value)
{
  CpErrorDetail *detail;
  const char *slash;

  g_return_val_if_fail (type_name != NULL, NULL);

  slash = strrchr (type_name, '/');
  if (slash != NULL)
    type_name = slash + 1;

  detail = g_new0 (CpErrorDetail, 1);
  g_atomic_ref_count_init (&detail->ref_count);
  detail->type_name = g_strdup (type_name);
  detail->value = value != NULL ? g_bytes_ref (value) : g_bytes_new (NULL, 0);
  return detail;
}

/**
 * cp_error_detail_ref:
 * @detail: a [struct@ConnectPlugin.ErrorDetail]
 *
 * Takes a reference on @detail.
 *
 * Returns: (transfer full): @detail
 */
CpErrorDetail *
cp_error_detail_ref (CpErrorDetail *detail)
{
  g_return_val_if_fail (detail != NULL, NULL);

  g_atomic_ref_count_inc (&detail->ref_count);
  return detail;
}

/**
 * cp_error_detail_unref:
 * @detail: (transfer full): a [struct@ConnectPlugin.ErrorDetail]
 *
 * Drops a reference on @detail, freeing it when it was the last one.
 */
void
cp_error_detail_unref (CpErrorDetail *detail)
{
  g_return_if_fail (detail != NULL);

  if (g_atomic_ref_count_dec (&detail->ref_count))
    {
      g_free (detail->type_name);
      g_bytes_unref (detail->value);
      g_free (detail);
    }
}

/**
 * cp_error_detail_get_type_name:
 * @detail: a [struct@ConnectPlugin.ErrorDetail]
 *
 * Gets the protobuf message name of @detail, without URL prefix.
 *
 * Returns: (transfer none): the type name
 */
const char *
cp_error_detail_get_type_name (CpErrorDetail *detail)
{
  g_return_val_if_fail (detail != NULL, NULL);

  return detail->type_name;
}

/**
 * cp_error_detail_get_value:
 * @detail: a [struct@ConnectPlugin.ErrorDetail]
 *
 * Gets the binary protobuf encoding of @detail.
 *
 * Returns: (transfer none): the encoded message
 */
GBytes *
cp_error_detail_get_value (CpErrorDetail *detail)
{
  g_return_val_if_fail (detail != NULL, NULL);

  return detail->value;
}

/**
 * cp_error_add_detail:
 * @error: a %CP_ERROR [struct@GLib.Error]
 * @detail: a [struct@ConnectPlugin.ErrorDetail]
 *
 * Appends @detail to the details of @error.
 */
void
cp_error_add_detail (GError        *error,
                     CpErrorDetail *detail)
{
  CpErrorPrivate *priv;

  g_return_if_fail (error != NULL && error->domain == CP_ERROR);
  g_return_if_fail (detail != NULL);

  priv = cp_error_get_private (error);
  g_ptr_array_add (priv->details, cp_error_detail_ref (detail));
}

/**
 * cp_error_get_details:
 * @error: a [struct@GLib.Error]
 *
 * Gets the details of a %CP_ERROR error.
 *
 * Returns: (transfer none) (nullable) (element-type CpErrorDetail): the
 *   details (possibly empty) of @error, or %NULL when @error is not in the
 *   %CP_ERROR domain
 */
GPtrArray *
cp_error_get_details (const GError *error)
{
  g_return_val_if_fail (error != NULL, NULL);

  if (error->domain != CP_ERROR)
    return NULL;
  return cp_error_get_private (error)->details;
}

/**
 * cp_error_get_metadata:
 * @error: a [struct@GLib.Error]
 *
 * Gets the metadata (headers) attached to a %CP_ERROR error. The headers may
 * be modified to attach metadata: a server sends them with the error.
 *
 * Returns: (transfer none) (nullable): the metadata of @error, or %NULL when
 *   @error is not in the %CP_ERROR domain
 */
SoupMessageHeaders *
cp_error_get_metadata (const GError *error)
{
  CpErrorPrivate *priv;

  g_return_val_if_fail (error != NULL, NULL);

  if (error->domain != CP_ERROR)
    return NULL;

  priv = cp_error_get_private (error);
  if (priv->metadata == NULL)
    priv->metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return priv->metadata;
}

/**
 * cp_error_set_metadata:
 * @error: a %CP_ERROR [struct@GLib.Error]
 * @metadata: (nullable): headers to copy into @error
 *
 * Replaces the metadata of @error with a copy of @metadata (%NULL clears
 * it).
 */
void
cp_error_set_metadata (GError             *error,
                       SoupMessageHeaders *metadata)
{
  CpErrorPrivate *priv;

  g_return_if_fail (error != NULL && error->domain == CP_ERROR);

  priv = cp_error_get_private (error);
  g_clear_pointer (&priv->metadata, soup_message_headers_unref);
  if (metadata != NULL)
    priv->metadata = copy_headers (metadata);
}
