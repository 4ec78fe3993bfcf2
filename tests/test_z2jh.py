"""The course hub on Kubernetes (hub/z2jh/): the chart's values as helm checks them, the same class
and rules as the one-server hub (coursehub), and an image without the instructor's files.

There is no cluster, helm or Docker daemon here. So the values are merged into the chart's
defaults and checked against the chart's schema, as `helm install` does (both from the chart's
source: tests/fixtures/z2jh-4.4.0); the hub's Python is run on the example roster; the students'
Jupyter settings are read by Jupyter Server's own code; the lessons hook runs in a temporary home;
the Dockerfile is read line by line.
"""

from __future__ import annotations

import builtins
import copy
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import types
from pathlib import Path

import jsonschema
import pytest
import yaml
from traitlets.config import Config

from coursehub.course import Course
from coursehub.hubconfig import LESSONS, configure, formgrader_service
from coursehub.layout import MODES
from coursehub.setup import HUB_COURSE_CONFIG, STUDENT_CONFIG

ROOT = Path(__file__).resolve().parents[1]
Z2JH = ROOT / "hub" / "z2jh"
CHART = ROOT / "tests" / "fixtures" / "z2jh-4.4.0"
CHART_HUB_VERSION = "5.5.0"          # the chart's appVersion: the JupyterHub its hub runs
# the idle culler's role, as the chart's jupyterhub_config.py makes it when cull.users is false
CHART_CULLER_SCOPES = {"list:users", "read:users:activity", "read:servers", "delete:servers"}


# ---- reading the files ---------------------------------------------------------------------------

def values() -> dict:
    return yaml.safe_load((Z2JH / "values.yaml").read_text())


def objects(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((Z2JH / name).read_text()) if doc]


def the(name: str, kind: str) -> dict:
    found = [o for o in objects(name) if o["kind"] == kind]
    assert len(found) == 1, f"{name} should hold one {kind}"
    return found[0]


def example_course() -> Course:
    return Course.load(ROOT / "hub" / "course.example.toml")


def helm_merge(defaults: dict, overrides: dict) -> dict:
    """What helm does with --values: maps merged key by key, anything else replaced, null removes."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def chart_values() -> dict:
    return helm_merge(json.loads((CHART / "values.json").read_text()), values())


def schema_errors(merged: dict) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(merged)]


def get_config_from(merged: dict):
    """The chart's z2jh.get_config: a dotted key into the values, or the default."""
    def get_config(key, default=None):
        node = merged
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return copy.deepcopy(node)
    return get_config


def write_roster(folder: Path, passwd: str | None = None, group: str | None = None) -> Path:
    data = the("roster.yaml", "ConfigMap")["data"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(data["passwd"] if passwd is None else passwd)
    (folder / "group").write_text(data["group"] if group is None else group)
    return folder


def hub_config(roster: Path) -> Config:
    """The configuration the hub's pod gets from hub.extraConfig, run as the chart runs it."""
    merged = chart_values()
    merged["custom"]["course"]["roster"] = str(roster)
    c = Config()
    for _, code in sorted(merged["hub"]["extraConfig"].items()):
        exec(compile(code, "hub.extraConfig", "exec"), {"c": c, "get_config": get_config_from(merged)})
    return c


@pytest.fixture
def one_server(monkeypatch) -> Config:
    """coursehub's configuration of the example class, with the accounts the roster gives (the
    one-server hub looks the instructor up among the machine's accounts)."""
    passwd = the("roster.yaml", "ConfigMap")["data"]["passwd"]
    accounts = {line.split(":")[0]: line.split(":") for line in passwd.splitlines()}
    real = pwd.getpwnam

    def getpwnam(name):
        if name not in accounts:
            return real(name)
        n, x, uid, gid, gecos, home, shell = accounts[name]
        return pwd.struct_passwd((n, x, int(uid), int(gid), gecos, home, shell))

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    c = Config()
    configure(c, example_course())
    return c


def read_config(text: str) -> Config:
    """The Config a Jupyter config file makes. nbgrader's classes stand in by name: importing
    nbgrader takes seconds, and both sides of every comparison here get the same stand-ins."""
    c = Config()
    auth = types.SimpleNamespace(JupyterHubAuthPlugin="nbgrader.auth.JupyterHubAuthPlugin")

    def imports(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "nbgrader.auth":
            return auth
        return builtins.__import__(name, globals, locals, fromlist, level)

    exec(compile(text, "config", "exec"),
         {"__builtins__": {**vars(builtins), "__import__": imports}, "c": c, "get_config": lambda: c})
    return c


def mounts(pod_spec: dict) -> dict[str, dict]:
    """{mountPath: {"volume": the volume, "readOnly": ..., "subPath": ...}} of a pod's first container."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    return {m["mountPath"]: {"volume": volumes[m["name"]], "readOnly": m.get("readOnly", False),
                             "subPath": m.get("subPath")} for m in pod_spec["containers"][0]["volumeMounts"]}


def singleuser_mounts() -> dict[str, dict]:
    storage = values()["singleuser"]["storage"]
    return mounts({"volumes": storage["extraVolumes"],
                   "containers": [{"volumeMounts": storage["extraVolumeMounts"]}]})


def pod(name: str, kind: str) -> dict:
    return the(name, kind)["spec"]["template"]["spec"]


def roster_uid(name: str) -> int:
    for line in the("roster.yaml", "ConfigMap")["data"]["passwd"].splitlines():
        if line.split(":")[0] == name:
            return int(line.split(":")[2])
    raise KeyError(name)


# ---- the values, as helm checks them ---------------------------------------------------------------

def test_the_values_pass_the_charts_schema_as_helm_checks_them():
    assert schema_errors(chart_values()) == []


def test_the_schema_check_catches_a_misspelt_setting():
    merged = chart_values()
    merged["singleuser"]["memory"]["limits"] = "3G"            # the chart's key is `limit`
    merged["cull"]["timeout"] = "an hour"
    errors = schema_errors(merged)
    assert any("limits" in e for e in errors) and any(e.startswith("cull.timeout") for e in errors)


def test_the_hub_logs_in_through_the_university_and_nobody_administers_it(one_server):
    hub = chart_values()["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] not in ("dummy", "pam"), \
        "the chart's default log-in (dummy) lets anyone in with any password"
    assert hub["JupyterHub"]["admin_access"] is False and hub["Authenticator"]["admin_users"] == []
    assert one_server.Authenticator.admin_users == set()


# ---- the same class and rules as the one-server hub ---------------------------------------------

def test_the_roster_is_the_class_of_the_example_class_file():
    course = example_course()
    groups = {line.split(":")[0]: line.split(":")[3].split(",")
              for line in the("roster.yaml", "ConfigMap")["data"]["group"].splitlines()}
    assert groups[f"nbgrader-{course.course_id}"] == course.people
    assert groups[f"formgrade-{course.course_id}"] == course.instructors
    assert values()["custom"]["course"]["id"] == course.course_id


def test_the_hub_allows_the_same_people_in_the_same_groups_as_one_server(tmp_path, one_server):
    hub, one = hub_config(write_roster(tmp_path / "roster")), one_server
    assert hub.Authenticator.allowed_users == one.Authenticator.allowed_users
    assert hub.JupyterHub.load_groups == one.JupyterHub.load_groups


def test_each_person_runs_with_their_own_uid_from_the_roster(tmp_path):
    c = hub_config(write_roster(tmp_path / "roster")).KubeSpawner
    course = example_course()

    def spawner(name):
        return types.SimpleNamespace(user=types.SimpleNamespace(name=name))

    uids = {name: c.uid(spawner(name)) for name in course.people}
    assert uids == {name: roster_uid(name) for name in course.people}
    assert len(set(uids.values())) == len(uids) and min(uids.values()) >= 1000
    assert all(c.gid(spawner(n)) == c.fs_gid(spawner(n)) == uids[n] for n in course.people)
    with pytest.raises(ValueError, match="not in the class"):
        c.uid(spawner("root"))
    assert c.container_security_context["capabilities"] == {"drop": ["ALL"]}
    assert chart_values()["singleuser"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("passwd_change, named", [
    (("bob:x:2102", "bob:x:2101"), "uid of their own"),        # bob would own alice's submissions
    (("carol:x:2103", "carol:x:0"), "uid of their own"),
    (("carol:x:2103:2103::/home/jovyan:/bin/bash\n", ""), "no line for"),
])
def test_a_roster_that_would_mix_up_owners_stops_the_hub(tmp_path, passwd_change, named):
    passwd = the("roster.yaml", "ConfigMap")["data"]["passwd"]
    assert passwd_change[0] in passwd
    roster = write_roster(tmp_path / "roster", passwd=passwd.replace(*passwd_change))
    with pytest.raises(ValueError, match=named):
        hub_config(roster)


# the one-server hub's services that have no counterpart on Kubernetes (INSTRUCTORS.md, "Beyond one
# server"): the exchange's guard removes, as root, what a student writes past the exchange's bounds
NOT_CARRIED_OVER = {"exchange-guard"}


def test_formgrader_is_a_service_that_only_the_instructors_group_may_open(one_server):
    course, chart = example_course(), chart_values()["hub"]
    service = formgrader_service(course)
    assert set(chart["services"]) == {service}
    chart_roles = {name: {"name": name, **role} for name, role in chart["loadRoles"].items()}
    for role in one_server.JupyterHub.load_roles:
        if role["name"] == "idle-culler":          # the chart makes the culler's role itself
            assert set(role["scopes"]) == CHART_CULLER_SCOPES
        elif role["name"] not in NOT_CARRIED_OVER:
            assert chart_roles.pop(role["name"], None) == role, f"the role {role['name']} differs or is missing"
    assert chart_roles == {}, "roles the one-server hub does not have"
    one = {s["name"]: s for s in one_server.JupyterHub.services}
    assert set(one) - NOT_CARRIED_OVER == {service, "idle-culler"}, "a service of the one-server hub is missing here"
    assert chart["services"][service]["oauth_no_confirm"] is one[service]["oauth_no_confirm"] is True
    graders = [role for role in chart["loadRoles"].values()
               if any(scope.startswith("access:services") for scope in role["scopes"])]
    assert [r.get("groups") for r in graders] == [[f"formgrade-{course.course_id}"]] and \
        not any(r.get("users") for r in graders), "formgrader is opened through the instructors' group alone"


def test_idle_servers_are_stopped_after_the_class_files_idle_minutes():
    cull = chart_values()["cull"]
    assert cull["enabled"] is True and cull["users"] is False
    assert cull["timeout"] == example_course().idle_minutes * 60


def test_each_server_has_the_class_files_memory_limit():
    from jupyterhub.traitlets import ByteSpecification

    single = chart_values()["singleuser"]
    limit = ByteSpecification().validate(None, single["memory"]["limit"])     # as KubeSpawner reads it
    assert limit == example_course().memory_bytes()
    assert ByteSpecification().validate(None, single["memory"]["guarantee"]) <= limit
    assert 0 < single["cpu"]["guarantee"] <= single["cpu"]["limit"]


def quantity(text: str) -> int:
    """A Kubernetes size in bytes (binary units only: Ki, Mi, Gi)."""
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", text).groups()
    return int(number) * {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[unit]


def test_each_home_and_the_exchange_have_the_class_files_sizes():
    course = example_course()
    assert quantity(chart_values()["singleuser"]["storage"]["capacity"]) == course.disk_bytes()
    claim = next(o for o in objects("storage.yaml") if o["metadata"]["name"] == "infogan-course-exchange"
                 and o["kind"] == "PersistentVolumeClaim")
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) == course.exchange_bytes()


def test_students_get_coursehubs_nbgrader_settings_and_the_exchange_at_its_root(one_server):
    course, single = example_course(), values()["singleuser"]
    placed = single["extraFiles"]["nbgrader-config"]
    ours = read_config(placed["stringData"])
    theirs = read_config(STUDENT_CONFIG.format(exchange=str(course.exchange), course_id=course.course_id))
    assert ours == theirs
    assert Path(placed["mountPath"]).parent == Path(single["extraEnv"]["JUPYTER_CONFIG_PATH"])
    exchange = singleuser_mounts()[ours.Exchange.root]
    assert exchange["volume"]["persistentVolumeClaim"]["claimName"] == "infogan-course-exchange"
    data = singleuser_mounts()[single["extraEnv"]["INFOGAN_DATA"]]
    assert single["extraEnv"]["INFOGAN_DATA"] == str(course.data_dir) and data["readOnly"]
    assert single["defaultUrl"] == one_server.Spawner.default_url


def test_the_exchange_is_a_shared_nfs_volume_that_fsgroup_never_rewrites():
    claims = {o["metadata"]["name"]: o for o in objects("storage.yaml") if o["kind"] == "PersistentVolumeClaim"}
    volumes = {o["metadata"]["name"]: o for o in objects("storage.yaml") if o["kind"] == "PersistentVolume"}
    claim = claims["infogan-course-exchange"]
    volume = volumes[claim["spec"]["volumeName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"] == ""
    assert "nfs" in volume["spec"], "the in-tree nfs type: Kubernetes never applies an fsGroup to it"
    assert volumes[claims["infogan-course-data"]["spec"]["volumeName"]]["spec"]["accessModes"] == ["ReadOnlyMany"]


def test_every_claim_and_config_map_named_is_made_by_these_files():
    made = {(o["kind"], o["metadata"]["name"]) for name in ("storage.yaml", "roster.yaml", "formgrader.yaml")
            for o in objects(name)}
    specs = [values()["singleuser"]["storage"]["extraVolumes"], values()["hub"]["extraVolumes"],
             pod("formgrader.yaml", "Deployment")["volumes"], pod("prepare-job.yaml", "Job")["volumes"],
             pod("grade-job.yaml", "Job")["volumes"]]
    for volume in (v for spec in specs for v in spec):
        if "persistentVolumeClaim" in volume:
            assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in made
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in made


def test_every_pod_that_checks_owners_by_name_sees_the_roster_as_etc_passwd():
    for spec in (pod("formgrader.yaml", "Deployment"), pod("prepare-job.yaml", "Job"),
                 pod("grade-job.yaml", "Job"), None):
        seen = singleuser_mounts() if spec is None else mounts(spec)
        for file in ("passwd", "group"):
            mount = seen[f"/etc/{file}"]
            assert mount["volume"]["configMap"]["name"] == "infogan-course-roster"
            assert mount["subPath"] == file and mount["readOnly"]
    hub = values()["hub"]
    hub_mounts = mounts({"volumes": hub["extraVolumes"], "containers": [{"volumeMounts": hub["extraVolumeMounts"]}]})
    assert hub_mounts[values()["custom"]["course"]["roster"]]["volume"]["configMap"]["name"] == "infogan-course-roster"


def test_the_exchange_is_laid_out_by_coursehub_layout_itself_before_anyone_uses_it():
    course = example_course()
    spec = pod("prepare-job.yaml", "Job")
    container = spec["containers"][0]
    assert container["securityContext"]["runAsUser"] == 0
    script = container["command"][-1]
    root = str(course.exchange)
    assert f"chmod {MODES[''] :o} {root}" in script and f"chown 0:0 {root}" in script
    assert f"python -m coursehub.layout {root} {course.course_id} {course.instructor}" in script
    assert f"chown {course.instructor}:{course.instructor} {course.course_dir}" in script
    assert f"chmod 700 {course.course_dir}" in script
    seen = mounts(spec)
    assert seen[root]["volume"] == singleuser_mounts()[root]["volume"]


def test_formgrader_runs_as_the_instructor_with_the_hubs_service_settings(one_server):
    course, chart = example_course(), values()
    service = formgrader_service(course)
    spec = pod("formgrader.yaml", "Deployment")
    container = spec["containers"][0]
    one = next(s for s in one_server.JupyterHub.services if s["name"] == service)
    # the server's options of the one-server service, less the port root hands over (a pod has its own)
    options = {a for a in one["command"] if a.startswith("--ServerApp.") and "coursehub.listen" not in a}
    assert options <= set(container["args"]) and container["args"][0] == "jupyterhub-singleuser"
    assert spec["securityContext"]["runAsUser"] == roster_uid(course.instructor)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["JUPYTERHUB_SERVICE_NAME"] == service and env["JUPYTERHUB_CLIENT_ID"] == f"service-{service}"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == f"/services/{service}/"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == f"/services/{service}/oauth_callback"
    assert env["JUPYTERHUB_USER"] == course.instructor and env["HOME"] == str(course.course_dir)
    assert env["JUPYTERHUB_API_TOKEN"]["secretKeyRef"] == {"name": "hub", "key": f"hub.services.{service}.apiToken"}
    kube_service = the("formgrader.yaml", "Service")
    port = kube_service["spec"]["ports"][0]["port"]
    assert chart["hub"]["services"][service]["url"] == f"http://{kube_service['metadata']['name']}:{port}"
    assert container["ports"][0]["containerPort"] == port and f":{port}/" in env["JUPYTERHUB_SERVICE_URL"]
    labels = the("formgrader.yaml", "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels["hub.jupyter.org/network-access-hub"] == "true", "the hub's NetworkPolicy lets only these in"
    seen = mounts(spec)
    assert seen[str(course.course_dir)]["volume"]["persistentVolumeClaim"]["claimName"] == "infogan-course-course"
    assert seen[str(course.exchange)]["volume"] == singleuser_mounts()[str(course.exchange)]["volume"]
    assert seen[env["INFOGAN_DATA"]]["readOnly"]


def test_formgraders_nbgrader_settings_are_those_coursehub_gives_the_course_folder():
    course = example_course()
    data = the("formgrader.yaml", "ConfigMap")["data"]
    ours = read_config(data["nbgrader_config.py"])
    theirs = read_config(HUB_COURSE_CONFIG.format(exchange=str(course.exchange), course_id=course.course_id))
    assert ours == theirs


# ---- what students see in Jupyter ------------------------------------------------------------------

def enabled_server_extensions(config_path: list[Path]) -> dict[str, bool]:
    """What Jupyter Server enables, read by its own code (ServerApp.find_server_extensions)."""
    from jupyter_server.extension.config import ExtensionConfigManager

    return ExtensionConfigManager(read_config_path=[str(p) for p in config_path]).get_jpserver_extensions()


def image_settings(tmp_path: Path) -> Path:
    """The image's sys.prefix/etc/jupyter: what the installed packages put there, then student-jupyter/."""
    prefix = tmp_path / "etc-jupyter"
    shutil.copytree(Path(sys.prefix) / "etc" / "jupyter", prefix)
    shutil.copytree(Z2JH / "student-jupyter", prefix, dirs_exist_ok=True)
    return prefix


def test_students_have_the_assignments_tab_and_not_formgrader(tmp_path):
    student = enabled_server_extensions([image_settings(tmp_path)])
    assert student["nbgrader.server_extensions.formgrader"] is False
    assert student["nbgrader.server_extensions.course_list"] is False
    assert student["nbgrader.server_extensions.assignment_list"] is True        # fetch and submit
    assert student["nbgrader.server_extensions.validate_assignment"] is True


def test_formgraders_pod_turns_formgrader_back_on(tmp_path):
    config = tmp_path / "formgrader"
    config.mkdir()
    data = the("formgrader.yaml", "ConfigMap")["data"]
    (config / "jupyter_server_config.json").write_text(data["jupyter_server_config.json"])
    env = {e["name"]: e.get("value") for e in pod("formgrader.yaml", "Deployment")["containers"][0]["env"]}
    assert env["JUPYTER_CONFIG_PATH"] == "/etc/infogan-course/formgrader"
    assert enabled_server_extensions([config, image_settings(tmp_path)])["nbgrader.server_extensions.formgrader"]


def test_the_lab_plugins_turned_off_are_nbgraders_instructor_tools():
    page = Z2JH / "student-jupyter" / "labconfig" / "page_config.json"
    disabled = json.loads(page.read_text())["disabledExtensions"]
    nbgrader_lab = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"
    built = "".join(p.read_text(errors="replace") for p in (nbgrader_lab / "static").glob("*.js"))
    plugins = set(re.findall(r'"(@jupyter/nbgrader:[a-z-]+)"', built))
    ours = {name for name in disabled if name.startswith("@jupyter/nbgrader:")}
    assert ours == {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list",
                    "@jupyter/nbgrader:create-assignment"}
    assert ours <= plugins, f"not plugins of the installed nbgrader: {ours - plugins}"
    assert {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"} <= plugins - ours


def run_hook(home: Path) -> None:
    subprocess.run(["sh", str(Z2JH / "place-lessons.sh")], check=True, timeout=30,
                   env={"HOME": str(home), "INFOGAN_KIT": str(ROOT), "PATH": os.environ["PATH"]})


def test_the_lessons_are_placed_on_first_start_and_never_overwritten(tmp_path):
    home = tmp_path / "home"
    (home / ".infogan-course-placing").mkdir(parents=True)         # a start stopped halfway
    (home / ".infogan-course-placing" / "half").write_text("")
    run_hook(home)
    lessons = home / "infogan-course"
    assert sorted(p.name for p in lessons.iterdir()) == sorted(LESSONS)
    assert not (home / ".infogan-course-placing").exists()
    readme = lessons / "README.md"
    assert readme.stat().st_mode & stat.S_IWUSR, "the copies are the person's to edit"
    readme.write_text("my notes")
    run_hook(home)
    assert readme.read_text() == "my notes"
    assert sorted(p.name for p in lessons.iterdir()) == sorted(LESSONS) and sorted(os.listdir(home)) == [lessons.name]


def test_the_pods_hook_runs_the_script_the_image_installs():
    hook = values()["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    copies = {}                                     # destination: source, of one-file COPYs
    for word, args in dockerfile():
        if word == "COPY" and len(args.split()) == 2:
            source, destination = args.split()
            copies[destination] = source
    assert copies[hook[0]] == "hub/z2jh/place-lessons.sh" and len(hook) == 1
    assert os.access(Z2JH / "place-lessons.sh", os.X_OK)
    env = dict(item.split("=", 1) for word, args in dockerfile() if word == "ENV" for item in args.split())
    assert re.search(r'kit="\$\{INFOGAN_KIT:-' + re.escape(env["INFOGAN_KIT"]) + r'\}"',
                     (Z2JH / "place-lessons.sh").read_text())


# ---- the image ----------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of hub/z2jh/Dockerfile, continuation lines joined, comments left out."""
    out, current = [], ""
    for line in (Z2JH / "Dockerfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        word, _, rest = (current + line).strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        current = ""
    return out


def copied_sources() -> list[str]:
    sources = []
    for word, args in dockerfile():
        if word == "COPY":
            parts = shlex.split(args)
            assert not any(p.startswith("--") for p in parts), f"COPY {args}: the image's files stay root's"
            sources += [p.rstrip("/") for p in parts[:-1]]
    return sources


def test_the_base_image_is_pinned_and_the_image_ends_as_a_user():
    steps = dockerfile()
    bases = [args for word, args in steps if word == "FROM"]
    assert len(bases) == 1 and re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+-[\w.-]+(@sha256:[0-9a-f]{64})?", bases[0]), \
        f"FROM {bases}: a tag that names a release (not latest, not a moving minor)"
    assert not [args for word, args in steps if word == "ADD"], "COPY from the build folder; no ADD (URLs, archives)"
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert steps[-1][0] == "USER", "nothing runs as root after the switch"


def test_the_image_installs_the_kits_pins_without_caches():
    steps = dockerfile()
    runs = " && ".join(args for word, args in steps if word == "RUN")
    for command in re.split(r"&&|;", runs):
        if re.search(r"\bpip install\b", command):
            assert "--no-cache-dir" in command, command
        if "apt-get install" in command:
            assert "--no-install-recommends" in command, command
    assert "rm -rf /var/lib/apt/lists/*" in runs
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    for name, version in pins.items():
        assert f"{name}=={version}" in runs, f"the image's {name} is requirements.txt's {version}"
    assert f"jupyterhub=={CHART_HUB_VERSION}" in runs, "the server's JupyterHub is the chart hub's"
    assert "-r /opt/infogan-course/requirements.txt" in runs


def test_the_kit_in_the_image_is_read_only_for_everyone():
    runs = " && ".join(args for word, args in dockerfile() if word == "RUN")
    made_read_only = re.search(r"chmod -R go-w ([^&]+)", runs).group(1).split()
    destinations = {shlex.split(args)[-1].rstrip("/") for word, args in dockerfile() if word == "COPY"}
    for destination in destinations:
        assert any(destination == d or destination.startswith(d + "/") for d in made_read_only), destination
    assert not re.search(r"chmod\s+(-R\s+)?(\d*7\d?7|[ao]\+w)", runs), "nothing is made writable for others"


def test_the_image_holds_only_what_the_student_bundle_may_hold():
    from grading.bundle import LEFT_OUT

    for source in copied_sources():
        assert (ROOT / source).exists(), source
        assert not (source + "/").startswith(LEFT_OUT) and not source.startswith(LEFT_OUT), source
        assert not {"solutions", ".grading", "gradebook.db", "submitted", "harness"} & set(Path(source).parts)
    lessons_and_library = {"infogan_lib", "notebooks", "docs", "README.md", "coursehub"}
    assert lessons_and_library <= set(copied_sources())


def dockerignore_keeps(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path, or a folder above it, decides."""
    def regex(pattern):
        out = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        return re.compile(out.replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))

    keep = True
    parts = path.split("/")
    for line in (Z2JH / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern = regex(line.lstrip("!"))
        if any(pattern.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            keep = line.startswith("!")
    return keep


def test_the_build_folder_sent_to_docker_holds_what_the_image_copies_and_no_answers():
    for source in copied_sources():
        files = [source] if (ROOT / source).is_file() else \
            [str(p.relative_to(ROOT)) for p in (ROOT / source).rglob("*") if p.is_file()]
        for file in files:
            junk = "__pycache__" in file or ".ipynb_checkpoints" in file or file.endswith(".pyc")
            assert dockerignore_keeps(file) != junk, file
    for private in ("solutions/infogan_homework/1_mi_bound.ipynb", ".grading/seed", "gradebook.db",
                    "submitted/alice/infogan_homework/1_mi_bound.ipynb", ".venv/bin/python", ".git/HEAD",
                    "harness/fake_class.py", "hub/course.toml", "nbgrader_config.py"):
        assert not dockerignore_keeps(private), private


def test_the_kubernetes_objects_pass_kubernetes_own_schemas():
    """Kubernetes' API schemas, strict (unknown fields refused), where the kubernetes-validate package
    is installed (`pip install kubernetes-validate`: about 100 MB of schemas, so not in the test extras)."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = [o for name in ("roster.yaml", "storage.yaml", "prepare-job.yaml", "formgrader.yaml",
                                "grade-job.yaml") for o in objects(name)]
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)
    broken = copy.deepcopy(the("formgrader.yaml", "Deployment"))
    broken["spec"]["template"]["spec"]["securityContext"]["runAsUsr"] = 2001
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)
