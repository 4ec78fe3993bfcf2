"""The course hub's JupyterHub configuration: `make hub` starts JupyterHub with this file.

Everything comes from the class file (INFOGAN_COURSE, default hub/course.toml; see
hub/course.example.toml) through `coursehub.hubconfig.configure`. To plug in a university's log-in
(LTI 1.3 from the LMS: `ltiauthenticator`; OAuth/OIDC: `oauthenticator`), set
c.JupyterHub.authenticator_class and its settings below the call (INSTRUCTORS.md).
"""

import os
import sys

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, KIT)

from coursehub.course import Course  # noqa: E402
from coursehub.hubconfig import check_ports, configure  # noqa: E402

c = get_config()  # noqa: F821  (JupyterHub provides it)
course = Course.load(os.environ.get("INFOGAN_COURSE", os.path.join(KIT, "hub", "course.toml")))
for warning in check_ports(course):
    print("warning:", warning, file=sys.stderr)
configure(c, course, admin_token=os.environ.get("INFOGAN_HUB_ADMIN_TOKEN"))
