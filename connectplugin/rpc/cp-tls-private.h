/* cp-tls-private.h: loading TLS certificates, keys and CAs from PEM files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Loads the PEM files given (each may be NULL): @cert_pem with @key_pem (the
 * key may also be in @cert_pem when @key_pem is NULL) into *@out_certificate,
 * @ca_pem into a file database in *@out_database. Outputs not loaded are set
 * to NULL. A key without a certificate is an error (CP_ERROR_INVALID_ARGUMENT);
 * unreadable or malformed files fail with the GIO/GTls error. */
gboolean cp_tls_load_files (const char       *cert_pem,
                            const char       *key_pem,
                            const char       *ca_pem,
                            GTlsCertificate **out_certificate,
                            GTlsDatabase    **out_database,
                            GError          **error);

/* cp_tls_load_files (), then sets what was loaded as @object's
 * "tls-certificate" and "tls-database" properties; on error @object is
 * left as it was. */
gboolean cp_tls_set_files  (GObject          *object,
                            const char       *cert_pem,
                            const char       *key_pem,
                            const char       *ca_pem,
                            GError          **error);

/* A file database trusting the CAs in @ca_pem (PEM text, certificates
 * only), read without writing them to disk: on Linux through a memfd
 * (/proc/self/fd/N, close-on-exec); elsewhere through a 0600 file in a 0700
 * temporary directory. Either lives as long as the database (glib-networking
 * reads the file again for each connection). */
GTlsDatabase *cp_tls_database_new_from_pem (const char  *ca_pem,
                                            GError     **error);

/* A database that trusts exactly @certificate (the same DER bytes) and
 * nothing else, within its validity period: verifying any other
 * certificate gives G_TLS_CERTIFICATE_UNKNOWN_CA, that one NOT_ACTIVATED
 * or EXPIRED outside its period. The peer's identity is not checked, nor
 * the chain above it: for a peer whose exact certificate is known
 * beforehand (AutoMTLS), the TLS handshake proving that it holds the key. */
GTlsDatabase *cp_tls_pinned_database_new   (GTlsCertificate *certificate);
/* The same for the first certificate of @pem (PEM text). */
GTlsDatabase *cp_tls_pinned_database_new_from_pem (const char  *pem,
                                                   GError     **error);

/* Loads GnuTLS (CP_GNUTLS_SONAME) and GIO's TLS backend module (the one
 * that giomodule.cache names for gio-tls-backend in GIO's module
 * directory, when there is one and GIO_USE_TLS does not choose) and keeps
 * them loaded for the life of the process. GIO loads glib-networking's
 * module twice, once to register its types (then unloads it) and once for
 * the backend object: without this, the module, GnuTLS and the libraries
 * only it needs are mapped, relocated and initialised twice when a process
 * first uses TLS. Cheap after the first call; failures are ignored (GIO
 * then loads them as before). */
void          cp_tls_preload_backend        (void);
/* The same in a thread of its own, started now: for a process that knows,
 * before anything else, that it will need TLS. It reads the environment
 * before it returns (the thread does not), and must be called before any
 * other thread could call cp_tls_preload_backend (). */
void          cp_tls_preload_backend_start  (void);

G_END_DECLS
