/* test-body.h: an in-memory request body a test pushes into
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define TEST_TYPE_BODY (test_body_get_type ())
G_DECLARE_FINAL_TYPE (TestBody, test_body, TEST, BODY, GInputStream)

TestBody *test_body_new    (GCallback  drained,   /* void (*)(gpointer), nullable */
                            gpointer   user_data);
gboolean  test_body_push   (TestBody  *self,
                            GBytes    *chunk);
void      test_body_end    (TestBody  *self);
void      test_body_fail   (TestBody  *self,
                            const GError *error);
void      test_body_detach (TestBody  *self);

G_END_DECLS
