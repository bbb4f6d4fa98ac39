/* cp-tls-proxy-private.h: pinned-trust TLS for a channel's libsoup sessions
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libsoup 3 builds each GTlsClientConnection without a database and sets
 * the session's afterwards; glib-networking has by then built the
 * connection's GnuTLS credentials from the default database, that is,
 * parsed the whole system CA bundle (tens of milliseconds, on every new
 * connection). A channel pinned to its own GTlsDatabase (AutoMTLS, or a
 * private CA) needs none of it: its sessions reach the server through this
 * connectable, whose addresses name a GProxy of ours that makes the TLS
 * connection itself with the database (and client certificate) given at
 * construction, and hands libsoup the finished stream as if it were a
 * plain TCP connection (libsoup then speaks http:// over it).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define CP_TYPE_TLS_CONNECTABLE (cp_tls_connectable_get_type ())
G_DECLARE_FINAL_TYPE (CpTlsConnectable, cp_tls_connectable, CP, TLS_CONNECTABLE, GObject)

/* For an https:// URL whose host is an IP address literal: a connectable
 * whose connections are TLS, verified against @database (the identity is
 * the URL's host) and presenting @certificate (nullable). NULL for any
 * other URL (libsoup's own TLS is used then). */
GSocketConnectable *cp_tls_connectable_new_for_url (GUri            *uri,
                                                    GTlsDatabase    *database,
                                                    GTlsCertificate *certificate);

/* New connections use these from now on (a connection made keeps its). */
void                cp_tls_connectable_set_tls     (CpTlsConnectable *self,
                                                    GTlsDatabase     *database,
                                                    GTlsCertificate  *certificate);

/* Points new connections at another https://IP:port; FALSE (nothing
 * changed) for any other URL. */
gboolean            cp_tls_connectable_set_url     (CpTlsConnectable *self,
                                                    GUri             *uri);

G_END_DECLS
