/* fuzz-k8s-watch.c: the apiserver's answers as CpKubernetesDiscovery reads them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first byte picks the parser: even, an EndpointSliceList (the answer
 * to a list); odd, one line of a watch stream. Either gives a result or a
 * CP_ERROR, never both; every endpoint that comes out has a port, an
 * address and a name made of [a-z0-9-] only, so its k8s:/// URL parses.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-kubernetes-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_slice (CpKubeSlice *slice)
{
  g_assert_nonnull (slice->name);
  g_assert_cmpuint (strlen (slice->name), >, 0);
  for (guint i = 0; i < slice->endpoints->len; i++)
    {
      CpKubeEndpoint *e = g_ptr_array_index (slice->endpoints, i);
      g_autofree char *url = cp_kube_endpoint_url (e, "ns");
      g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);

      g_assert_cmpuint (e->port, >, 0);
      g_assert_cmpuint (strlen (e->address), >, 0);
      g_assert_cmpuint (strlen (e->name), >, 0);
      for (const char *p = e->name; *p != '\0'; p++)
        g_assert_true (g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '-');
      g_assert_nonnull (uri);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  const char *text;

  if (size == 0)
    return 0;
  text = (const char *) data + 1;
  if ((data[0] & 1) == 0)
    {
      GPtrArray *slices = NULL;
      char *rv = NULL;
      gboolean ok = cp_kube_slice_list_parse (text, size - 1, "grpc", &slices, &rv, &error);

      g_assert_true (ok == (error == NULL));
      if (!ok)
        {
          g_assert_true (error->domain == CP_ERROR);
          return 0;
        }
      g_assert_cmpuint (strlen (rv), >, 0);
      for (guint i = 0; i < slices->len; i++)
        check_slice (g_ptr_array_index (slices, i));
      g_ptr_array_unref (slices);
      g_free (rv);
    }
  else
    {
      g_autoptr(CpKubeEvent) event = cp_kube_event_parse (text, size - 1, NULL, &error);

      g_assert_true ((event == NULL) != (error == NULL));
      if (event == NULL)
        {
          g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
          return 0;
        }
      if (event->type == CP_KUBE_EVENT_ERROR)
        g_assert_nonnull (event->message);
      else
        g_assert_cmpuint (strlen (event->resource_version), >, 0);
      g_assert_true ((event->slice != NULL) ==
                     (event->type != CP_KUBE_EVENT_ERROR && event->type != CP_KUBE_EVENT_BOOKMARK));
      if (event->slice != NULL)
        check_slice (event->slice);
    }
  return 0;
}
