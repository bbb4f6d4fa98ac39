/* cp-plugin-constants.h: wire constants of the plugin system
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Values shared with connect-plugin-go (docs/wire-contract.md).
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

/**
 * CP_MAGIC_COOKIE_KEY:
 *
 * The default magic cookie key of the handshake.
 */
#define CP_MAGIC_COOKIE_KEY "CONNECT_PLUGIN"

/**
 * CP_MAGIC_COOKIE_VALUE:
 *
 * The default magic cookie value of the handshake.
 */
#define CP_MAGIC_COOKIE_VALUE "d3f40b3c2e1a5f8b9c4d7e6a1b2c3d4e"

/**
 * CP_CORE_PROTOCOL_VERSION:
 *
 * The core protocol version spoken by this library (the only one).
 */
#define CP_CORE_PROTOCOL_VERSION 1

/**
 * CP_DEFAULT_APP_PROTOCOL_VERSION:
 *
 * The application protocol version used when none is configured.
 */
#define CP_DEFAULT_APP_PROTOCOL_VERSION 1

/**
 * CP_SERVER_VERSION:
 *
 * The `server_version` a [class@ConnectPlugin.Server] reports in its handshake metadata.
 */
#define CP_SERVER_VERSION "0.1.0"

/**
 * CP_LISTEN_ENV:
 *
 * The environment variable telling a plugin executable where to listen
 * (`127.0.0.1:0`, `unix:/path`); see [method@ConnectPlugin.Server.run].
 */
#define CP_LISTEN_ENV "CONNECTPLUGIN_LISTEN"

/**
 * CP_CONTROL_SECRET_ENV:
 *
 * The environment variable through which a host gives a plugin it launches
 * the secret that PluginControl and PluginIdentity calls must carry
 * (`Authorization: Bearer SECRET`); see [property@ConnectPlugin.Server:control-secret]. The
 * server removes it from its environment when it reads it.
 */
#define CP_CONTROL_SECRET_ENV "CONNECTPLUGIN_CONTROL_SECRET"

/**
 * CP_AUTOMTLS_CERT_ENV:
 *
 * The environment variable through which a launching host (AutoMTLS, see
 * [property@ConnectPlugin.ProcessDiscovery:auto-mtls]) gives a plugin the
 * server certificate it must serve (PEM). [method@ConnectPlugin.Server.run]
 * reads it with [const@ConnectPlugin.AUTOMTLS_KEY_ENV] and
 * [const@ConnectPlugin.AUTOMTLS_CA_ENV] and removes all three from its
 * environment.
 */
#define CP_AUTOMTLS_CERT_ENV "CONNECTPLUGIN_AUTOMTLS_CERT"

/**
 * CP_AUTOMTLS_KEY_ENV:
 *
 * The environment variable holding the private key (PEM) of
 * [const@ConnectPlugin.AUTOMTLS_CERT_ENV].
 */
#define CP_AUTOMTLS_KEY_ENV "CONNECTPLUGIN_AUTOMTLS_KEY"

/**
 * CP_AUTOMTLS_CA_ENV:
 *
 * The environment variable holding the CA (PEM) that the launching host's
 * client certificate chains to: the only CA an AutoMTLS plugin accepts
 * clients of.
 */
#define CP_AUTOMTLS_CA_ENV "CONNECTPLUGIN_AUTOMTLS_CA"

/**
 * CP_AUTOMTLS_FD_ENV:
 *
 * The environment variable through which a launching host (AutoMTLS, see
 * [property@ConnectPlugin.ProcessDiscovery:auto-mtls]) tells a plugin the
 * number of an inherited file descriptor, the read end of a pipe, from which
 * it reads its credentials: four NUL-terminated PEM texts (the server
 * certificate, its private key, the CA, and the host's client certificate,
 * the only one the plugin accepts; without the fourth, hosts of an earlier
 * version, any client certificate the CA signed), then the end of the pipe.
 * The host writes them while the plugin starts.
 *
 * When the variable is set, the library acts before the program's `main ()`:
 * it removes the variable (and [const@ConnectPlugin.CONTROL_SECRET_ENV],
 * which the first [class@ConnectPlugin.Server] then takes), makes the
 * descriptor close-on-exec, and starts loading the TLS libraries on a
 * thread of its own. Such a plugin has a thread from the start, so, as
 * GLib says of g_setenv(), it must not change its environment.
 * [method@ConnectPlugin.Server.run] reads the pipe and closes it; it reads
 * [const@ConnectPlugin.AUTOMTLS_CERT_ENV] and the other two variables when
 * this one is absent (hosts of older versions).
 */
#define CP_AUTOMTLS_FD_ENV "CONNECTPLUGIN_AUTOMTLS_FD"

/**
 * CP_DEFAULT_SHUTDOWN_TIMEOUT_MS:
 *
 * The default graceful shutdown timeout of a [class@ConnectPlugin.Server] (30 s).
 */
#define CP_DEFAULT_SHUTDOWN_TIMEOUT_MS 30000

/* Procedures of the built-in services. */

/**
 * CP_PROCEDURE_HANDSHAKE:
 *
 * `connectplugin.v1.HandshakeService/Handshake`.
 */
#define CP_PROCEDURE_HANDSHAKE "/connectplugin.v1.HandshakeService/Handshake"
/**
 * CP_PROCEDURE_HEALTH_CHECK:
 *
 * `connectplugin.health.v1.HealthService/Check`.
 */
#define CP_PROCEDURE_HEALTH_CHECK "/connectplugin.health.v1.HealthService/Check"
/**
 * CP_PROCEDURE_HEALTH_WATCH:
 *
 * `connectplugin.health.v1.HealthService/Watch` (server stream).
 */
#define CP_PROCEDURE_HEALTH_WATCH "/connectplugin.health.v1.HealthService/Watch"
/**
 * CP_PROCEDURE_CONTROL_GET_HEALTH:
 *
 * `connectplugin.v1.PluginControl/GetHealth`.
 */
#define CP_PROCEDURE_CONTROL_GET_HEALTH "/connectplugin.v1.PluginControl/GetHealth"
/**
 * CP_PROCEDURE_CONTROL_SHUTDOWN:
 *
 * `connectplugin.v1.PluginControl/Shutdown`.
 */
#define CP_PROCEDURE_CONTROL_SHUTDOWN "/connectplugin.v1.PluginControl/Shutdown"
/**
 * CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO:
 *
 * `connectplugin.v1.PluginIdentity/GetPluginInfo`.
 */
#define CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO "/connectplugin.v1.PluginIdentity/GetPluginInfo"
/**
 * CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY:
 *
 * `connectplugin.v1.PluginIdentity/SetRuntimeIdentity`.
 */
#define CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY "/connectplugin.v1.PluginIdentity/SetRuntimeIdentity"
/**
 * CP_PROCEDURE_LIFECYCLE_REPORT_HEALTH:
 *
 * `connectplugin.v1.PluginLifecycle/ReportHealth` (served by hosts).
 */
#define CP_PROCEDURE_LIFECYCLE_REPORT_HEALTH "/connectplugin.v1.PluginLifecycle/ReportHealth"
/**
 * CP_PROCEDURE_BROKER_REQUEST_CAPABILITY:
 *
 * `connectplugin.v1.CapabilityBroker/RequestCapability` (served by hosts).
 */
#define CP_PROCEDURE_BROKER_REQUEST_CAPABILITY "/connectplugin.v1.CapabilityBroker/RequestCapability"

/**
 * CP_HEALTHZ_PATH:
 *
 * The liveness path: `200 ok` while the process runs.
 */
#define CP_HEALTHZ_PATH "/healthz"
/**
 * CP_READYZ_PATH:
 *
 * The readiness path: `200 ready` when serving, `503 not ready` otherwise.
 */
#define CP_READYZ_PATH "/readyz"
