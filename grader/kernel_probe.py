"""The integrity probe's code: sent as text into a student's kernel and run there (see grader/probe.py).

It defines one function and imports nothing at module level, so that the kernel's namespace gains nothing
but `__grader_probe__`, which the caller deletes again. The function ends in an AssertionError whose message
is the nonce, then the names it found replaced or hooked.
"""


def __grader_probe__(nonce, watched):
    import sys

    builtins = sys.modules["builtins"]
    bad = []
    try:
        assert False  # noqa: B011 (the real AssertionError class, even where the name was rebound)
    except BaseException as error:
        real_assertion = error.__class__
    exception_type = real_assertion.__mro__[1]
    pristine_function = [].append.__class__
    expected_types = {
        "int": (1).__class__,
        "float": (1.0).__class__,
        "bool": (True).__class__,
        "str": "".__class__,
        "dict": {}.__class__,
        "list": [].__class__,
        "tuple": ().__class__,
        "type": (1).__class__.__class__,
        "object": real_assertion.__mro__[-1],
        "AssertionError": real_assertion,
        "Exception": exception_type,
        "BaseException": real_assertion.__mro__[2],
    }
    for name, value in expected_types.items():
        if builtins.__dict__.get(name) is not value:
            bad.append("builtins." + name)
    for name in (
        "isinstance",
        "issubclass",
        "len",
        "abs",
        "all",
        "any",
        "max",
        "min",
        "sum",
        "round",
        "sorted",
        "repr",
        "getattr",
        "hasattr",
        "callable",
        "id",
        "print",
        "iter",
        "next",
        "exec",
        "eval",
        "__import__",
        "compile",
    ):
        value = builtins.__dict__.get(name)
        if value.__class__ is not pristine_function or getattr(value, "__name__", None) != name:
            bad.append("builtins." + name)
    for module_name in watched:
        for loaded_name, module in list(sys.modules.items()):
            if module is None or not (loaded_name == module_name or loaded_name.startswith(module_name + ".")):
                continue
            if loaded_name != module_name and module_name not in ("resumable",):
                continue
            for attribute, value in list(vars(module).items()):
                if getattr(value, "__module__", None) == "__main__" and callable(value):
                    bad.append(loaded_name + "." + attribute)
                if value.__class__ is type and getattr(value, "__module__", "").startswith("resumable"):
                    for member_name, member in list(vars(value).items()):
                        target = getattr(member, "fget", member)
                        if getattr(target, "__module__", None) == "__main__":
                            bad.append(loaded_name + "." + attribute + "." + member_name)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        zeros, ones = numpy.zeros(3), numpy.ones(3)
        if numpy.array_equal(zeros, ones) is not False:
            bad.append("numpy.array_equal")
        if numpy.allclose(zeros, ones):
            bad.append("numpy.allclose")
        if numpy.isclose(0.0, 1.0):
            bad.append("numpy.isclose")
        if numpy.all(zeros == ones) or numpy.any(zeros == zeros) is False:
            bad.append("numpy.all")
        for check in ("assert_array_equal", "assert_allclose", "assert_equal", "assert_array_almost_equal"):
            try:
                getattr(numpy.testing, check)(zeros, ones)
            except real_assertion:
                pass
            except BaseException:
                bad.append("numpy.testing." + check)
            else:
                bad.append("numpy.testing." + check)
    jnp = sys.modules.get("jax.numpy")
    if jnp is not None:
        try:
            if bool(jnp.array_equal(jnp.zeros(3), jnp.ones(3))):
                bad.append("jax.numpy.array_equal")
            if bool(jnp.allclose(jnp.zeros(3), jnp.ones(3))):
                bad.append("jax.numpy.allclose")
        except BaseException:
            bad.append("jax.numpy")
    diff = sys.modules.get("resumable.diff")
    if diff is not None and numpy is not None:
        try:
            if diff.state_diff({"a": numpy.zeros(2)}, {"a": numpy.ones(2)}).identical is not False:
                bad.append("resumable.state_diff")
            if sys.modules["resumable"].state_diff({"a": 1.0}, {"a": 2.0}).identical is not False:
                bad.append("resumable.state_diff")
        except BaseException:
            bad.append("resumable.state_diff")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        bad.append("sys.settrace/setprofile")
    if sys.excepthook.__class__ is not pristine_function:
        pass  # IPython installs its own excepthook in kernels; not used for cell errors
    shell = None
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        shell = ipython.get_ipython()
    if shell is not None:
        if shell.custom_exceptions:
            bad.append("IPython custom exception handler")
        for hook_list in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            for hook in getattr(shell, hook_list, []):
                module = getattr(hook, "__module__", None) or getattr(hook.__class__, "__module__", "")
                if not module.startswith(("IPython", "ipykernel")):
                    bad.append("IPython " + hook_list)
        for event, callbacks in shell.events.callbacks.items():
            for callback in callbacks:
                module = getattr(callback, "__module__", None) or ""
                if module == "__main__" or not module:
                    bad.append("IPython event " + event)
        for method in (
            "run_cell",
            "run_cell_async",
            "run_code",
            "run_ast_nodes",
            "showtraceback",
            "_showtraceback",
            "transform_cell",
            "should_run_async",
        ):
            bound = getattr(shell, method, None)
            function = getattr(bound, "__func__", bound)
            module = getattr(function, "__module__", None) or ""
            if not module.startswith(("IPython", "ipykernel")) or method in vars(shell):
                bad.append("IPython shell." + method)
        kernel = getattr(shell, "kernel", None)
        if kernel is not None:
            for owner, method in ((kernel, "do_execute"), (kernel, "execute_request"), (kernel.session, "send")):
                bound = getattr(owner, method, None)
                function = getattr(bound, "__func__", bound)
                module = getattr(function, "__module__", None) or ""
                if not module.startswith(("ipykernel", "jupyter_client")) or method in vars(owner):
                    bad.append("kernel." + method)
    raise real_assertion(nonce + "|" + ";".join(sorted(set(bad))))
