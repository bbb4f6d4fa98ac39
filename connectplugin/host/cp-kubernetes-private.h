/* cp-kubernetes-private.h: CpKubernetesDiscovery's parsers (kubeconfig, EndpointSlices)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here reads bytes from outside the process (a kubeconfig file,
 * the apiserver's answers): bad input is a GError (CP_ERROR), never a crash.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "cp-kubernetes-discovery.h"

G_BEGIN_DECLS

/* ---- kubeconfig and in-cluster configuration (cp-kubeconfig.c) ---- */

/* How to reach and authenticate to an apiserver. PEM texts, not paths:
 * files named by a kubeconfig are read when it is parsed. */
typedef struct {
  char *server;           /* https://host:port, no trailing slash */
  char *ca_pem;           /* nullable: the system CAs when NULL */
  gboolean insecure;      /* insecure-skip-tls-verify */
  char *token;            /* nullable: bearer token */
  char *client_cert_pem;  /* nullable: client certificate and its key */
  char *client_key_pem;
  char *namespace;        /* nullable: the context's namespace */
} CpKubeConfig;

void          cp_kube_config_free        (CpKubeConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpKubeConfig, cp_kube_config_free)

/* The subset of YAML a kubeconfig uses (block mappings and sequences,
 * plain, single- and double-quoted scalars, literal/folded block scalars,
 * comments, `{}` and `[]`) as a JSON tree; JSON text is read as JSON.
 * Anchors, aliases, tags and other flow collections are refused
 * (CP_ERROR_INVALID_ARGUMENT). Scalars are strings. */
JsonNode     *cp_kube_yaml_parse         (const char   *text,
                                          gsize         length,
                                          GError      **error);

/* Parses kubeconfig @text; relative file names in it are resolved against
 * @base_dir (nullable: the current directory) and read. @context: the
 * context to use, or NULL for current-context. */
CpKubeConfig *cp_kube_config_parse       (const char   *text,
                                          gsize         length,
                                          const char   *base_dir,
                                          const char   *context,
                                          GError      **error);

/* The in-cluster configuration: the service account's token, ca.crt and
 * namespace in @sa_dir (NULL: /var/run/secrets/kubernetes.io/serviceaccount)
 * and KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT. */
CpKubeConfig *cp_kube_config_in_cluster  (const char   *sa_dir,
                                          GError      **error);

/* ---- EndpointSlices and watch events (cp-kubernetes-parse.c) ---- */

/* One address of an EndpointSlice, on the port the discovery follows. */
typedef struct {
  char *name;      /* targetRef.name, hostname or the address, URL-safe */
  char *address;   /* addresses[0]: an IP address or a host name */
  guint16 port;
  gboolean ready;  /* conditions.ready (absent means ready) */
  gboolean tls;    /* the port's appProtocol or name says https */
} CpKubeEndpoint;

typedef struct {
  char *name;              /* metadata.name */
  GPtrArray *endpoints;    /* (element-type CpKubeEndpoint) */
} CpKubeSlice;

void         cp_kube_slice_free    (CpKubeSlice *slice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpKubeSlice, cp_kube_slice_free)

/* One EndpointSlice object; @port_name NULL follows the first port. */
CpKubeSlice *cp_kube_slice_parse   (JsonNode    *node,
                                    const char  *port_name,
                                    GError     **error);

/* An EndpointSliceList (the answer to a list): its slices and
 * metadata.resourceVersion. */
gboolean     cp_kube_slice_list_parse (const char   *data,
                                       gsize         length,
                                       const char   *port_name,
                                       GPtrArray   **out_slices,
                                       char        **out_resource_version,
                                       GError      **error);

typedef enum {
  CP_KUBE_EVENT_ADDED,
  CP_KUBE_EVENT_MODIFIED,
  CP_KUBE_EVENT_DELETED,
  CP_KUBE_EVENT_BOOKMARK,
  CP_KUBE_EVENT_ERROR,
} CpKubeEventType;

/* One line of a watch stream. ADDED/MODIFIED/DELETED carry @slice and its
 * @resource_version; BOOKMARK only @resource_version; ERROR the Status'
 * @code (410: the resourceVersion is too old, relist) and @message. */
typedef struct {
  CpKubeEventType type;
  CpKubeSlice *slice;
  char *resource_version;
  int code;
  char *message;
} CpKubeEvent;

void         cp_kube_event_free    (CpKubeEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpKubeEvent, cp_kube_event_free)

CpKubeEvent *cp_kube_event_parse   (const char  *line,
                                    gsize        length,
                                    const char  *port_name,
                                    GError     **error);

/* Whether @data is one JSON object with only spaces after it (the
 * parsers refuse anything else before json-glib, which leaks on "[1] [2]"). */
gboolean     cp_kube_json_is_one_object (const char *data,
                                         gsize       length);

/* The URL of @endpoint: k8s:///NAME.NAMESPACE:PORT. */
char        *cp_kube_endpoint_url  (const CpKubeEndpoint *endpoint,
                                    const char           *namespace);

/* For tests: a discovery reading the in-cluster configuration from
 * @sa_dir instead of /var/run/secrets/kubernetes.io/serviceaccount. */
CpKubernetesDiscovery *cp_kubernetes_discovery_new_in_cluster_at (const char  *sa_dir,
                                                                  const char  *service,
                                                                  const char  *namespace,
                                                                  const char  *port_name,
                                                                  GError     **error);

/* For tests: how many lists (successful or not) and watches were started. */
void cp_kubernetes_discovery_get_counts (CpKubernetesDiscovery *self,
                                         guint                 *n_lists,
                                         guint                 *n_watches);

G_END_DECLS
