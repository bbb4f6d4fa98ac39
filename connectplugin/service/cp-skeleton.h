/* cp-skeleton.h: base class of generated service skeletons (server side)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-invocation.h"
#include "cp-message.h"
#include "cp-method-info.h"
#include "cp-rpc-server.h"
#include "cp-service-descriptor.h"

G_BEGIN_DECLS

#define CP_TYPE_SKELETON (cp_skeleton_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (CpSkeleton, cp_skeleton, CP, SKELETON, GObject)

/**
 * CpSkeletonClass:
 * @parent_class: the parent class
 * @dispatch: hands one call to the implementation; returns %TRUE if the
 *   call was taken care of (answered now, or to be answered later), %FALSE
 *   to answer `unimplemented`. Generated classes implement it by emitting
 *   their `handle-<method>` signal.
 *
 * Generated subclasses bind the class to their service in class_init with
 * [method@ConnectPlugin.SkeletonClass.set_descriptor] and implement @dispatch.
 */
struct _CpSkeletonClass
{
  GObjectClass parent_class;

  gboolean (*dispatch) (CpSkeleton   *skeleton,
                        CpMethodInfo *method,
                        CpInvocation *invocation,
                        CpMessage    *request);

  /*< private >*/
  CpServiceDescriptor *descriptor;
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
CpServiceDescriptor *cp_skeleton_get_descriptor       (CpSkeleton          *skeleton);
CP_AVAILABLE_IN_ALL
void                 cp_skeleton_class_set_descriptor (CpSkeletonClass     *klass,
                                                       CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
gboolean             cp_skeleton_export               (CpSkeleton          *skeleton,
                                                       CpRpcServer         *server,
                                                       GError             **error);
CP_AVAILABLE_IN_ALL
void                 cp_skeleton_unexport             (CpSkeleton          *skeleton);
CP_AVAILABLE_IN_ALL
gboolean             cp_skeleton_is_exported          (CpSkeleton          *skeleton);

G_END_DECLS
