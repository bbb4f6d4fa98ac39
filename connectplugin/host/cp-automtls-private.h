/* cp-automtls-private.h: the ephemeral certificates of AutoMTLS
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For each launch over TCP, CpProcessDiscovery makes a CA, a server
 * certificate for 127.0.0.1/localhost and a client certificate, both signed
 * by that CA (ECDSA P-256, GnuTLS). The CA's key is dropped once both are
 * signed: nobody can sign another certificate it trusts. The plugin gets
 * the server certificate, its key, the CA and the client certificate
 * (without its key) through an inherited pipe (cp-process-launch.c; the
 * host makes them while the plugin starts), and trusts that client
 * certificate alone (a plugin given no client certificate, by a host of
 * an earlier version, trusts the CA); the host keeps the client
 * certificate and a database trusting the plugin's certificate alone
 * (cp_tls_pinned_database_new ()).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  char *ca_pem;                       /* the CA's certificate */
  char *server_cert_pem;              /* for the plugin */
  char *server_key_pem;               /* for the plugin; wiped when freed */
  char *client_cert_pem;              /* the host's, for the plugin to pin */
  GTlsCertificate *client_certificate;  /* the host's, with its key */
  GTlsDatabase *database;             /* trusts server_cert_pem alone */
} CpAutoMtls;

/* Certificates valid from a minute ago for @lifetime_s seconds. */
CpAutoMtls *cp_automtls_new  (guint        lifetime_s,
                              GError     **error);
void        cp_automtls_free (CpAutoMtls  *automtls);

/* A process-wide table of the AutoMTLS plugins that run, by origin
 * (host:port of their https:// URL), for the parts of the host that reach a
 * launched plugin by its URL and not through its discovery: the router's
 * upstream pool, the broker's control channels. Thread-safe. */
void        cp_automtls_register   (const char       *url,
                                    CpAutoMtls       *automtls);
void        cp_automtls_unregister (const char       *url);
/* The host's certificate and the pinned database for @url (https only);
 * FALSE (outputs NULL) when it is not an AutoMTLS plugin's. */
gboolean    cp_automtls_lookup     (const char       *url,
                                    GTlsCertificate **certificate,
                                    GTlsDatabase    **database);
/* The same by host and port (a GSocketClient's connectable). */
gboolean    cp_automtls_lookup_host (const char      *host,
                                     guint16          port,
                                     GTlsCertificate **certificate,
                                     GTlsDatabase    **database);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAutoMtls, cp_automtls_free)

G_END_DECLS
