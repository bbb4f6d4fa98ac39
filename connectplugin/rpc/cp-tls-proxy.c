/* cp-tls-proxy.c: pinned-trust TLS for a channel's libsoup sessions (see
 * cp-tls-proxy-private.h): a connectable, its proxy addresses and the GProxy
 * that makes their TLS connections
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-tls-proxy-private.h"

#define PROTOCOL "connectplugin-tls"

/* ---- an address: where to connect, and the TLS material to use ---- */

#define CP_TYPE_TLS_PROXY_ADDRESS (cp_tls_proxy_address_get_type ())
G_DECLARE_FINAL_TYPE (CpTlsProxyAddress, cp_tls_proxy_address, CP, TLS_PROXY_ADDRESS, GProxyAddress)

struct _CpTlsProxyAddress
{
  GProxyAddress parent_instance;
  GTlsDatabase *database;        /* NULL: the default database */
  GTlsCertificate *certificate;  /* nullable */
};

G_DEFINE_FINAL_TYPE (CpTlsProxyAddress, cp_tls_proxy_address, G_TYPE_PROXY_ADDRESS)

static void
cp_tls_proxy_address_finalize (GObject *object)
{
  CpTlsProxyAddress *self = CP_TLS_PROXY_ADDRESS (object);

  g_clear_object (&self->database);
  g_clear_object (&self->certificate);
  G_OBJECT_CLASS (cp_tls_proxy_address_parent_class)->finalize (object);
}

static void
cp_tls_proxy_address_class_init (CpTlsProxyAddressClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_tls_proxy_address_finalize;
}

static void
cp_tls_proxy_address_init (CpTlsProxyAddress *self)
{
}

/* ---- the GProxy: TLS with the address's material, from construction ---- */

#define CP_TYPE_TLS_PROXY (cp_tls_proxy_get_type ())
G_DECLARE_FINAL_TYPE (CpTlsProxy, cp_tls_proxy, CP, TLS_PROXY, GObject)

struct _CpTlsProxy
{
  GObject parent_instance;
};

static void cp_tls_proxy_iface_init (GProxyInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpTlsProxy, cp_tls_proxy, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_PROXY, cp_tls_proxy_iface_init))

/* The client connection, not yet handshaken. The database is a construct
 * property here: glib-networking builds the credentials from it at once,
 * and never looks at the default (system) one. */
static GTlsConnection *
new_tls_connection (GIOStream      *connection,
                    GProxyAddress  *address,
                    GError        **error)
{
  static const char *protocols[] = { "http/1.1", NULL };
  GTlsBackend *backend = g_tls_backend_get_default ();
  g_autoptr(GSocketConnectable) identity = NULL;
  CpTlsProxyAddress *self;
  const char *names[6];
  GValue values[6] = { G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT,
                       G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT };
  guint n = 0;
  GObject *tls;

  if (!CP_IS_TLS_PROXY_ADDRESS (address) || !g_tls_backend_supports_tls (backend))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "TLS is not available");
      return NULL;
    }
  self = CP_TLS_PROXY_ADDRESS (address);
  identity = g_network_address_new (g_proxy_address_get_destination_hostname (address),
                                    g_proxy_address_get_destination_port (address));

  names[n] = "base-io-stream";
  g_value_init (&values[n], G_TYPE_IO_STREAM);
  g_value_set_object (&values[n++], connection);
  names[n] = "server-identity";
  g_value_init (&values[n], G_TYPE_SOCKET_CONNECTABLE);
  g_value_set_object (&values[n++], identity);
  names[n] = "require-close-notify";
  g_value_init (&values[n], G_TYPE_BOOLEAN);
  g_value_set_boolean (&values[n++], FALSE);
  names[n] = "advertised-protocols";
  g_value_init (&values[n], G_TYPE_STRV);
  g_value_set_boxed (&values[n++], protocols);
  if (self->database != NULL)
    {
      names[n] = "database";
      g_value_init (&values[n], G_TYPE_TLS_DATABASE);
      g_value_set_object (&values[n++], self->database);
    }
  if (self->certificate != NULL)
    {
      names[n] = "certificate";
      g_value_init (&values[n], G_TYPE_TLS_CERTIFICATE);
      g_value_set_object (&values[n++], self->certificate);
    }
  tls = g_object_new_with_properties (g_tls_backend_get_client_connection_type (backend),
                                      n, names, values);
  for (guint i = 0; i < n; i++)
    g_value_unset (&values[i]);
  if (!g_initable_init (G_INITABLE (tls), NULL, error))
    {
      g_object_unref (tls);
      return NULL;
    }
  return G_TLS_CONNECTION (tls);
}

static GIOStream *
cp_tls_proxy_connect (GProxy         *proxy,
                      GIOStream      *connection,
                      GProxyAddress  *address,
                      GCancellable   *cancellable,
                      GError        **error)
{
  g_autoptr(GTlsConnection) tls = new_tls_connection (connection, address, error);

  if (tls == NULL || !g_tls_connection_handshake (tls, cancellable, error))
    return NULL;
  return G_IO_STREAM (g_steal_pointer (&tls));
}

static void
handshake_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    g_task_return_pointer (task, g_object_ref (source), g_object_unref);
  else
    g_task_return_error (task, error);
}

static void
cp_tls_proxy_connect_async (GProxy              *proxy,
                            GIOStream           *connection,
                            GProxyAddress       *address,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (proxy, cancellable, callback, user_data);
  g_autoptr(GTlsConnection) tls = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, cp_tls_proxy_connect_async);
  tls = new_tls_connection (connection, address, &error);
  if (tls == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_tls_connection_handshake_async (tls, G_PRIORITY_DEFAULT, cancellable, handshake_cb, task);
}

static GIOStream *
cp_tls_proxy_connect_finish (GProxy        *proxy,
                             GAsyncResult  *result,
                             GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static gboolean
cp_tls_proxy_supports_hostname (GProxy *proxy)
{
  return TRUE;
}

static void
cp_tls_proxy_iface_init (GProxyInterface *iface)
{
  iface->connect = cp_tls_proxy_connect;
  iface->connect_async = cp_tls_proxy_connect_async;
  iface->connect_finish = cp_tls_proxy_connect_finish;
  iface->supports_hostname = cp_tls_proxy_supports_hostname;
}

static void
cp_tls_proxy_class_init (CpTlsProxyClass *klass)
{
}

static void
cp_tls_proxy_init (CpTlsProxy *self)
{
}

/* GSocketClient finds a proxy by its protocol on GIO's extension point;
 * looking one up first has GIO register its extension points. */
static gpointer
register_proxy (gpointer data)
{
  GProxy *known = g_proxy_get_default_for_protocol (PROTOCOL);

  if (known == NULL)
    g_io_extension_point_implement (G_PROXY_EXTENSION_POINT_NAME, CP_TYPE_TLS_PROXY, PROTOCOL, 0);
  g_clear_object (&known);
  return NULL;
}

/* ---- the connectable ---- */

struct _CpTlsConnectable
{
  GObject parent_instance;
  GMutex lock;
  GInetAddress *address;
  char *host;                    /* the URL's host, the TLS identity */
  guint16 port;
  GTlsDatabase *database;
  GTlsCertificate *certificate;
};

static void cp_tls_connectable_iface_init (GSocketConnectableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpTlsConnectable, cp_tls_connectable, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_SOCKET_CONNECTABLE,
                                                      cp_tls_connectable_iface_init))

static GSocketAddressEnumerator *
cp_tls_connectable_enumerate (GSocketConnectable *connectable)
{
  CpTlsConnectable *self = CP_TLS_CONNECTABLE (connectable);
  g_autoptr(CpTlsProxyAddress) address = NULL;

  g_mutex_lock (&self->lock);
  address = g_object_new (CP_TYPE_TLS_PROXY_ADDRESS,
                          "address", self->address,
                          "port", (guint) self->port,
                          "protocol", PROTOCOL,
                          "destination-protocol", "https",
                          "destination-hostname", self->host,
                          "destination-port", (guint) self->port,
                          NULL);
  g_set_object (&address->database, self->database);
  g_set_object (&address->certificate, self->certificate);
  g_mutex_unlock (&self->lock);
  /* A socket address enumerates itself, once. */
  return g_socket_connectable_enumerate (G_SOCKET_CONNECTABLE (address));
}

static char *
cp_tls_connectable_to_string (GSocketConnectable *connectable)
{
  CpTlsConnectable *self = CP_TLS_CONNECTABLE (connectable);
  char *text;

  g_mutex_lock (&self->lock);
  text = g_strdup_printf ("%s:%u", self->host, self->port);
  g_mutex_unlock (&self->lock);
  return text;
}

static void
cp_tls_connectable_iface_init (GSocketConnectableIface *iface)
{
  iface->enumerate = cp_tls_connectable_enumerate;
  iface->proxy_enumerate = cp_tls_connectable_enumerate;
  iface->to_string = cp_tls_connectable_to_string;
}

static void
cp_tls_connectable_finalize (GObject *object)
{
  CpTlsConnectable *self = CP_TLS_CONNECTABLE (object);

  g_clear_object (&self->address);
  g_free (self->host);
  g_clear_object (&self->database);
  g_clear_object (&self->certificate);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (cp_tls_connectable_parent_class)->finalize (object);
}

static void
cp_tls_connectable_class_init (CpTlsConnectableClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_tls_connectable_finalize;
}

static void
cp_tls_connectable_init (CpTlsConnectable *self)
{
  g_mutex_init (&self->lock);
}

/* The IP address and port of an https:// URL with an IP literal host. */
static GInetAddress *
parse_target (GUri    *uri,
              guint16 *port)
{
  const char *host;

  if (uri == NULL || g_strcmp0 (g_uri_get_scheme (uri), "https") != 0)
    return NULL;
  host = g_uri_get_host (uri);
  if (host == NULL)
    return NULL;
  *port = g_uri_get_port (uri) > 0 ? (guint16) g_uri_get_port (uri) : 443;
  return g_inet_address_new_from_string (host);
}

GSocketConnectable *
cp_tls_connectable_new_for_url (GUri            *uri,
                                GTlsDatabase    *database,
                                GTlsCertificate *certificate)
{
  static GOnce registered = G_ONCE_INIT;
  CpTlsConnectable *self;
  GInetAddress *address;
  guint16 port = 0;

  g_return_val_if_fail (database == NULL || G_IS_TLS_DATABASE (database), NULL);
  address = parse_target (uri, &port);
  if (address == NULL)
    return NULL;
  g_once (&registered, register_proxy, NULL);
  self = g_object_new (CP_TYPE_TLS_CONNECTABLE, NULL);
  self->address = address;
  self->host = g_strdup (g_uri_get_host (uri));
  self->port = port;
  g_set_object (&self->database, database);
  g_set_object (&self->certificate, certificate);
  return G_SOCKET_CONNECTABLE (self);
}

void
cp_tls_connectable_set_tls (CpTlsConnectable *self,
                            GTlsDatabase     *database,
                            GTlsCertificate  *certificate)
{
  g_return_if_fail (CP_IS_TLS_CONNECTABLE (self));

  g_mutex_lock (&self->lock);
  g_set_object (&self->database, database);
  g_set_object (&self->certificate, certificate);
  g_mutex_unlock (&self->lock);
}

gboolean
cp_tls_connectable_set_url (CpTlsConnectable *self,
                            GUri             *uri)
{
  GInetAddress *address;
  guint16 port = 0;

  g_return_val_if_fail (CP_IS_TLS_CONNECTABLE (self), FALSE);

  address = parse_target (uri, &port);
  if (address == NULL)
    return FALSE;
  g_mutex_lock (&self->lock);
  g_clear_object (&self->address);
  self->address = address;
  g_free (self->host);
  self->host = g_strdup (g_uri_get_host (uri));
  self->port = port;
  g_mutex_unlock (&self->lock);
  return TRUE;
}
