/* k8s-harness.h: a real etcd and kube-apiserver on 127.0.0.1 for the k8s tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* An etcd (/usr/bin/etcd) and a kube-apiserver (built by
 * build-kube-apiserver.sh into the cache) on free ports of 127.0.0.1, in a
 * private temporary directory, with a static bearer token. The processes
 * die with the test (PR_SET_PDEATHSIG) even when it aborts. */
typedef struct {
  char *dir;
  char *apiserver_bin;
  GSubprocess *etcd;
  GSubprocess *apiserver;
  guint etcd_port;
  guint api_port;
  char *etcd_url;
  char *server;       /* https://127.0.0.1:PORT */
  char *token;
  char *ca_file;      /* the apiserver's self-signed certificate */
  char *kubeconfig;   /* server, CA file and token */
  /* In dir: client.crt and client.key, signed by the client CA the
   * apiserver trusts (--client-ca-file), in group system:masters. */
  SoupSession *session;
  guint namespaces;
} K8sHarness;

/* Exits 77 (skip) when the apiserver cannot be built because Go is
 * missing; any other failure fails the test. */
K8sHarness *k8s_harness_start            (const char  *build_script);
void        k8s_harness_free             (K8sHarness  *h);
void        k8s_harness_stop_apiserver   (K8sHarness  *h);
void        k8s_harness_start_apiserver  (K8sHarness  *h);

/* A REST call; returns the HTTP status, *@out_body (nullable) the body. */
guint       k8s_harness_request          (K8sHarness  *h,
                                          const char  *method,
                                          const char  *path,
                                          const char  *content_type,
                                          const char  *body,
                                          char       **out_body);
/* A fresh namespace (deleted ones stay Terminating). */
char       *k8s_harness_new_namespace    (K8sHarness  *h);
/* Creates EndpointSlice @name of @service (port "grpc", 8080) with the
 * endpoints given as a JSON array; then replaces them (merge patch). */
void        k8s_harness_create_slice     (K8sHarness  *h,
                                          const char  *ns,
                                          const char  *name,
                                          const char  *service,
                                          const char  *endpoints_json);
void        k8s_harness_patch_slice      (K8sHarness  *h,
                                          const char  *ns,
                                          const char  *name,
                                          const char  *endpoints_json);
void        k8s_harness_delete_slice     (K8sHarness  *h,
                                          const char  *ns,
                                          const char  *name);
/* Writes a few keys to etcd, then compacts its history up to now. */
void        k8s_harness_compact_etcd     (K8sHarness  *h);

G_END_DECLS
