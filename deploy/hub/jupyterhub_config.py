"""nbpack on a JupyterHub (5.3+ / 6): a snippet to merge into the hub's ``jupyterhub_config.py``.

nbpack's launch links, by the hub's ``launch`` mode in nbpack's hub registry (docs/deploy.md):
  nbgitpuller  {hub}/hub/user-redirect/git-pull?repo=<handle's git URL>&branch=main&urlpath=...&targetpath=...
  fromurl      {hub}/hub/user-redirect/lab?fromURL=<the lone notebook's URL>&fromURLToFolder=...
  a profile    {hub}/hub/spawn[/<user>/<slug>]?opt-profile=<slug>&next=<one of the above>
The user environment (every profile's Python) needs: jupyterlab>=4, nbgitpuller (git links) and
jupyterlab-open-url-parameter (fromurl links), both server/lab extensions enabled by their pip install, plus pyarrow
for the bundle runtime. Nothing nbpack-specific runs in the hub process itself.
On zero-to-jupyterhub (KubeSpawner) use values.yaml beside this file instead: its profileList is what the hub reads.
"""

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

c.Spawner.default_url = "/lab"

# What the bundle runtime reads from the hub, never from a bundle: the Rucio server, the RSEs this hub mounts and the
# hosts a WLCG bearer token may be sent to (https only). Per-user tokens (RUCIO_ACCESS_TOKEN, BEARER_TOKEN) come from
# the user's own login flow, not from this file.
c.Spawner.environment.update(
    {
        "RUCIO_HOST": "https://rucio.example.org",
        "NBPACK_LOCAL_RSES": "SARA-DCACHE,LOFAR-LTA",
        "NBPACK_BEARER_HOSTS": "webdav.example.org",
    }
)

# Profiles: the slugs listed in nbpack's hub registry (`profiles = [{slug = ...}]`), each a Python environment with
# the packages the registry says it has. A launch link passes the slug as `opt-profile` (the registry's
# `profile_option`, default "profile"); JupyterHub reads `opt-` query arguments into user_options.
NBPACK_PROFILES = {
    "standard": {"display_name": "Standard (2 CPU, 4 GB)", "prefix": "/opt/envs/standard", "cpus": 2, "mem": "4G"},
    "lofar": {"display_name": "LOFAR (4 CPU, 16 GB)", "prefix": "/opt/envs/lofar", "cpus": 4, "mem": "16G"},
}
NBPACK_DEFAULT_PROFILE = "standard"

# Query arguments arrive as lists of strings; "simple" turns single values into strings.
c.Spawner.options_from_form = "simple"
c.Spawner.options_form = "<label for='profile'>Profile</label><select name='profile'>{}</select>".format(
    "".join(f"<option value='{slug}'>{p['display_name']}</option>" for slug, p in NBPACK_PROFILES.items())
)


def nbpack_apply_user_options(spawner, user_options):  # noqa: ANN001, ANN201 - JupyterHub's hook signature
    """Run the user's server (and so its kernels) in the chosen profile's environment; unknown slugs refused."""
    slug = user_options.get("profile", NBPACK_DEFAULT_PROFILE)
    if not isinstance(slug, str) or slug not in NBPACK_PROFILES:
        raise ValueError(f"unknown profile {slug!r}")  # JupyterHub answers 400 "Invalid user options"
    profile = NBPACK_PROFILES[slug]
    bin_dir = f"{profile['prefix']}/bin"
    spawner.cmd = [f"{bin_dir}/jupyterhub-singleuser"]
    spawner.environment = {**spawner.environment, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}
    spawner.cpu_limit = profile["cpus"]  # enforced by spawners that can (Systemd, Docker, Kube), kept by the rest
    spawner.mem_limit = profile["mem"]


c.Spawner.apply_user_options = nbpack_apply_user_options

# A server already running ignores spawn options: with named servers, nbpack's profile links start (or reuse) a
# server named after the profile (registry `named_servers = true`), so the profile asked for is the one that runs.
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = len(NBPACK_PROFILES) + 1
