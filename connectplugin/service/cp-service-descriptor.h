/* cp-service-descriptor.h: describes one RPC service and its generated classes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-method-info.h"

G_BEGIN_DECLS

#define CP_TYPE_SERVICE_DESCRIPTOR (cp_service_descriptor_get_type ())

typedef struct _CpServiceDescriptor CpServiceDescriptor;

CP_AVAILABLE_IN_ALL
GType                cp_service_descriptor_get_type          (void) G_GNUC_CONST;
CP_AVAILABLE_IN_ALL
CpServiceDescriptor *cp_service_descriptor_new               (const char          *full_name,
                                                              GType                proxy_type,
                                                              GType                skeleton_type);
CP_AVAILABLE_IN_ALL
CpServiceDescriptor *cp_service_descriptor_ref               (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
void                 cp_service_descriptor_unref             (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
void                 cp_service_descriptor_add_method        (CpServiceDescriptor *descriptor,
                                                              CpMethodInfo        *info);
CP_AVAILABLE_IN_ALL
const char          *cp_service_descriptor_get_full_name     (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
const char          *cp_service_descriptor_get_path          (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
GType                cp_service_descriptor_get_proxy_type    (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
GType                cp_service_descriptor_get_skeleton_type (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
GPtrArray           *cp_service_descriptor_get_methods       (CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
CpMethodInfo        *cp_service_descriptor_lookup_method     (CpServiceDescriptor *descriptor,
                                                              const char          *method_name);

CP_AVAILABLE_IN_ALL
void                 cp_service_descriptor_set_file_descriptor_set (CpServiceDescriptor *descriptor,
                                                                    GBytes              *file_descriptor_set);
CP_AVAILABLE_IN_ALL
GBytes              *cp_service_descriptor_get_file_descriptor_set (CpServiceDescriptor *descriptor);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpServiceDescriptor, cp_service_descriptor_unref)

G_END_DECLS
