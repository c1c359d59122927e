"""Variables (DESIGN §1.5): which value applies to a deployment, and what `#{...}` expands
to, including the errors a user sees when a reference is undefined, loops or is
ambiguous."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shiplane.domain.models import ImageRef
from shiplane.domain.variables import (
    DIMENSIONS,
    EvaluationContext,
    Variable,
    VariableScope,
    check_cycles,
    matches,
    rank,
    references,
    resolve,
    substitute,
    system_variables,
)
from shiplane.errors import (
    AmbiguousVariableError,
    UndefinedVariableError,
    VariableCycleError,
    VariableError,
)

CTX = EvaluationContext(
    environment="prod",
    tenant="acme",
    tenant_tags=frozenset({"tier/gold", "region/eu"}),
    target="prod-eu-1",
    target_roles=frozenset({"web", "edge"}),
    channel="stable",
    step="api",
)
UNTENANTED = EvaluationContext(
    environment="prod",
    tenant=None,
    tenant_tags=frozenset(),
    target="prod-eu-1",
    target_roles=frozenset({"web"}),
    channel="stable",
    step="api",
)
# One scoped value per dimension, each matching CTX.
MATCHING = {
    "steps": ["api"],
    "targets": ["prod-eu-1"],
    "target_roles": ["web"],
    "tenants": ["acme"],
    "tenant_tags": ["tier/gold"],
    "environments": ["prod"],
    "channels": ["stable"],
}


def var(name: str, value: str, **scope: list[str]) -> Variable:
    return Variable(name=name, value=value, scope=VariableScope(**scope))


def scoped(*dimensions: str) -> dict[str, list[str]]:
    return {d: MATCHING[d] for d in dimensions}


def lookup(*variables: Variable, **system: str) -> dict[str, Variable | str]:
    table: dict[str, Variable | str] = {v.name.lower(): v for v in variables}
    table.update({k.lower(): v for k, v in system.items()})
    return table


# --------------------------------------------------------------------------- the model


def test_dimensions_are_in_the_documented_order_of_precedence() -> None:
    assert DIMENSIONS == (
        "steps",
        "targets",
        "target_roles",
        "tenants",
        "tenant_tags",
        "environments",
        "channels",
    )


@pytest.mark.parametrize("name", ["DbHost", "App.Url", "my_var-2", "Things[0].Name"])
def test_valid_names(name: str) -> None:
    assert Variable(name=name).name == name


@pytest.mark.parametrize("name", ["", "Db Host", "a{b}", "a#b", "a|b", "Shiplane.Release.Number"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        Variable(name=name)


def test_the_shiplane_prefix_is_reserved_whatever_its_case() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Variable(name="SHIPLANE.Custom")
    assert Variable(name="ShiplaneCustom").name == "ShiplaneCustom"


def test_a_secret_reference_belongs_only_to_a_sensitive_variable() -> None:
    with pytest.raises(ValidationError, match="secret_ref"):
        Variable(name="Pw", secret_ref="/shiplane/web/Pw")
    assert Variable(name="Pw", sensitive=True, secret_ref="/shiplane/web/Pw").secret_ref


def test_unknown_scope_dimensions_are_refused() -> None:
    with pytest.raises(ValidationError):
        VariableScope.model_validate({"regions": ["eu-west-1"]})


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({}, True),
        ({"environments": ["dev", "prod"]}, True),  # OR within a dimension
        ({"environments": ["dev"]}, False),
        ({"environments": ["prod"], "channels": ["stable"]}, True),  # AND across
        ({"environments": ["prod"], "channels": ["beta"]}, False),
        ({"tenant_tags": ["tier/free", "region/eu"]}, True),  # any of the tenant's tags
        ({"tenant_tags": ["tier/free"]}, False),
        ({"target_roles": ["worker", "edge"]}, True),  # any of the target's roles
        ({"target_roles": ["worker"]}, False),
        ({"tenants": ["globex"]}, False),
        ({"targets": ["prod-us-1"]}, False),
        ({"steps": ["db"]}, False),
    ],
)
def test_matches(scope: dict[str, list[str]], expected: bool) -> None:
    assert matches(VariableScope(**scope), CTX) is expected


@pytest.mark.parametrize("scope", [{"tenants": ["acme"]}, {"tenant_tags": ["tier/gold"]}])
def test_a_tenant_scoped_value_never_applies_to_an_untenanted_deployment(
    scope: dict[str, list[str]],
) -> None:
    assert not matches(VariableScope(**scope), UNTENANTED)


# --------------------------------------------------------------------------- precedence

LADDER = [  # weakest first (DESIGN §1.5)
    (),
    ("channels",),
    ("environments",),
    ("tenant_tags",),
    ("tenants",),
    ("target_roles",),
    ("targets",),
    ("steps",),
]


@pytest.mark.parametrize(
    ("weaker", "stronger"),
    itertools.combinations(LADDER, 2),
    ids=lambda dims: "+".join(dims) or "unscoped",
)
def test_the_more_specific_dimension_wins(
    weaker: tuple[str, ...], stronger: tuple[str, ...]
) -> None:
    values = [var("Url", "weak", **scoped(*weaker)), var("Url", "strong", **scoped(*stronger))]
    assert resolve(values, CTX)["url"].value == "strong"
    assert resolve(list(reversed(values)), CTX)["url"].value == "strong"


@pytest.mark.parametrize(
    ("weaker", "stronger"),
    [
        (("tenants",), ("environments", "tenants")),  # more dimensions beat fewer
        (("environments",), ("environments", "channels")),
        (("targets",), ("targets", "channels")),
        (("environments", "tenants", "targets"), ("steps",)),  # the strongest decides
        (("environments", "tenant_tags", "channels"), ("tenants",)),
        (("target_roles", "tenants", "environments", "channels"), ("targets",)),
        (("steps",), ("steps", "environments")),
    ],
    ids=lambda dims: "+".join(dims),
)
def test_combinations(weaker: tuple[str, ...], stronger: tuple[str, ...]) -> None:
    assert rank(VariableScope(**scoped(*stronger))) > rank(VariableScope(**scoped(*weaker)))
    values = [var("Url", "weak", **scoped(*weaker)), var("Url", "strong", **scoped(*stronger))]
    assert resolve(values, CTX)["url"].value == "strong"


def test_values_that_do_not_match_are_ignored_and_unmatched_variables_are_absent() -> None:
    values = [
        var("Url", "project"),
        var("Url", "dev", environments=["dev"]),
        var("Only", "dev", environments=["dev"]),
    ]
    assert {k: v.value for k, v in resolve(values, CTX).items()} == {"url": "project"}


def test_names_are_case_insensitive_when_resolving() -> None:
    values = [var("DbHost", "project"), var("DBHOST", "prod", environments=["prod"])]
    assert resolve(values, CTX) == {"dbhost": values[1]}


def test_an_equal_rank_tie_is_an_error_naming_the_variable_scopes_and_context() -> None:
    values = [
        var("DbHost", "a", environments=["prod"]),
        var("DbHost", "b", environments=["prod", "staging"]),
    ]
    with pytest.raises(AmbiguousVariableError) as caught:
        resolve(values, CTX)
    message = caught.value.message
    assert "'DbHost'" in message
    assert "environments=['prod']" in message and "environments=['prod', 'staging']" in message
    assert "'prod'" in message and "'acme'" in message and "'prod-eu-1'" in message
    assert "'api'" in message
    assert caught.value.details["variable"] == "DbHost"


def test_a_tie_between_equal_values_is_no_error() -> None:
    values = [var("Region", "eu", tenants=["acme"]), var("Region", "eu", tenants=["acme", "x"])]
    assert resolve(values, CTX)["region"].value == "eu"


def test_a_tie_between_weaker_values_is_no_error_when_a_stronger_value_wins() -> None:
    values = [
        var("Url", "a", environments=["prod"]),
        var("Url", "b", environments=["prod", "qa"]),
        var("Url", "winner", tenants=["acme"]),
    ]
    assert resolve(values, CTX)["url"].value == "winner"


# --------------------------------------------------------------------------- properties

ENVS, TENANTS, TAGS = ["dev", "prod"], ["acme", "globex"], ["tier/gold", "tier/free"]
ROLES, TARGETS, CHANNELS, STEPS = ["web", "worker"], ["t1", "t2"], ["stable", "beta"], ["a", "b"]
CHOICES = {
    "environments": ENVS,
    "tenants": TENANTS,
    "tenant_tags": TAGS,
    "target_roles": ROLES,
    "targets": TARGETS,
    "channels": CHANNELS,
    "steps": STEPS,
}
PRECEDENCE = [
    "steps",
    "targets",
    "target_roles",
    "tenants",
    "tenant_tags",
    "environments",
    "channels",
]


def subset(options: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(options), unique=True, max_size=len(options))


# Most dimensions unscoped, so that values match often enough to compete.
UNSCOPED: st.SearchStrategy[list[str]] = st.builds(list)
scopes = st.builds(
    VariableScope,
    **{d: st.one_of(UNSCOPED, UNSCOPED, subset(o)) for d, o in CHOICES.items()},
)


@st.composite
def variable_sets(draw: Any) -> list[Variable]:
    """Values share scopes from a small pool, so that equal-rank ties are common."""
    pool = draw(st.lists(scopes, min_size=1, max_size=4))
    value = st.builds(
        lambda name, value, scope: Variable(name=name, value=value, scope=scope),
        st.sampled_from(["Url", "URL", "Port"]),
        st.sampled_from(["x", "y"]),
        st.sampled_from(pool),
    )
    return draw(st.lists(value, max_size=6))


@st.composite
def contexts(draw: Any) -> EvaluationContext:
    tenant = draw(st.none() | st.sampled_from(TENANTS))
    return EvaluationContext(
        environment=draw(st.sampled_from(ENVS)),
        tenant=tenant,
        tenant_tags=frozenset(draw(subset(TAGS))),  # even untenanted: tags must not count
        target=draw(st.sampled_from(TARGETS)),
        target_roles=frozenset(draw(subset(ROLES))),
        channel=draw(st.sampled_from(CHANNELS)),
        step=draw(st.sampled_from(STEPS)),
    )


def reference_matches(scope: VariableScope, ctx: EvaluationContext) -> bool:
    tenanted = ctx.tenant is not None
    have = {
        "environments": {ctx.environment},
        "tenants": {ctx.tenant} if tenanted else set(),
        "tenant_tags": set(ctx.tenant_tags) if tenanted else set(),
        "target_roles": set(ctx.target_roles),
        "targets": {ctx.target},
        "channels": {ctx.channel},
        "steps": {ctx.step},
    }
    return all(not getattr(scope, d) or have[d] & set(getattr(scope, d)) for d in have)


def weight(scope: VariableScope) -> int:
    """Specificity as a number: each dimension outweighs all weaker ones together."""
    return sum(1 << (len(PRECEDENCE) - i) for i, d in enumerate(PRECEDENCE) if getattr(scope, d))


@settings(max_examples=150, deadline=None)
@given(scopes, contexts())
def test_matches_agrees_with_a_reference_predicate(
    scope: VariableScope, ctx: EvaluationContext
) -> None:
    assert matches(scope, ctx) == reference_matches(scope, ctx)


@settings(max_examples=120, deadline=None)
@given(
    variable_sets(),
    contexts(),
)
def test_resolve_picks_a_matching_value_that_nothing_outranks(
    values: list[Variable], ctx: EvaluationContext
) -> None:
    matching = [v for v in values if reference_matches(v.scope, ctx)]
    try:
        resolved = resolve(values, ctx)
    except AmbiguousVariableError:
        # Only when two equally specific matching values really differ.
        assert any(
            a.name.lower() == b.name.lower()
            and weight(a.scope) == weight(b.scope)
            and a.value != b.value
            and weight(a.scope) == max(weight(c.scope) for c in matching if c.key == a.key)
            for a, b in itertools.combinations(matching, 2)
        )
        return
    assert set(resolved) == {v.name.lower() for v in matching}
    for key, chosen in resolved.items():
        assert reference_matches(chosen.scope, ctx)
        rivals = [v for v in matching if v.name.lower() == key]
        assert all(weight(v.scope) <= weight(chosen.scope) for v in rivals)
        assert all(
            v.value == chosen.value for v in rivals if weight(v.scope) == weight(chosen.scope)
        )


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet='#{}|ab \\"', max_size=20))
def test_escaping_every_opening_gives_the_text_back(text: str) -> None:
    assert substitute(text.replace("#{", "##{"), {}, where="w").text == text


# --------------------------------------------------------------------------- substitution


def sub(text: str, *variables: Variable, **system: str) -> str:
    return substitute(text, lookup(*variables, **system), where="test").text


def test_plain_text_is_unchanged() -> None:
    assert sub("no references here: # { } | #") == "no references here: # { } | #"


def test_a_reference_is_replaced_and_names_are_case_insensitive() -> None:
    host = var("DbHost", "db.internal")
    assert sub("#{DbHost}:5432", host) == "db.internal:5432"
    assert sub("#{dbhost}/#{DBHOST}/#{ DbHost }", host) == "db.internal/db.internal/db.internal"


def test_a_nested_reference_forms_the_outer_name() -> None:
    variables = (var("Env", "Prod"), var("DbProd", "db.prod"), var("DbDev", "db.dev"))
    assert sub("#{Db#{Env}}", *variables) == "db.prod"
    assert sub("#{#{Which}}", var("Which", "Env"), *variables) == "Prod"


def test_values_are_expanded_recursively() -> None:
    variables = (var("Url", "https://#{Host}/#{Path}"), var("Host", "#{Sub}.example.com"))
    assert sub("#{Url}", *variables, var("Sub", "api"), var("Path", "v1")) == (
        "https://api.example.com/v1"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("##{Name}", "#{Name}"),
        ("a ##{Name} b #{Name}", "a #{Name} b value"),
        ("###{Name}", "##{Name}"),
        ("####{Name}", "###{Name}"),  # only the "##{" right before the brace is an escape
    ],
)
def test_escapes(text: str, expected: str) -> None:
    assert sub(text, var("Name", "value")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#{Name | ToLower}", "hello world"),
        ("#{Name | ToUpper}", "HELLO WORLD"),
        ("#{Name|toupper}", "HELLO WORLD"),
        ('#{Name | Replace "World" "There"}', "Hello There"),
        ("#{Name | Replace World There}", "Hello There"),
        ('#{Name | Replace " "}', "HelloWorld"),
        ('#{Name | Replace "o" ""}', "Hell Wrld"),
        ("#{Name | Replace . x}", "Hello World"),  # literal text, not a pattern
        ('#{Name | Replace "World" "}|{"}', "Hello }|{"),
        ("#{Name | Truncate 5}", "Hello"),
        ("#{Name | Truncate 50}", "Hello World"),
        ("#{Name | Replace World There | ToUpper}", "HELLO THERE"),
        ("#{Name | ToLower | Replace hello bye | Truncate 5}", "bye w"),
    ],
)
def test_filters(text: str, expected: str) -> None:
    assert sub(text, var("Name", "Hello World")) == expected


def test_json_escape_makes_a_value_safe_inside_a_json_string() -> None:
    raw = 'say "hi"\\ \n\tnow é'
    escaped = sub("#{Raw | JsonEscape}", var("Raw", raw))
    assert escaped == 'say \\"hi\\"\\\\ \\n\\tnow é'
    import json

    assert json.loads(f'{{"v": "{escaped}"}}') == {"v": raw}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("#{Name | Shout}", "unknown filter 'Shout'"),
        ("#{Name | Truncate}", "'Truncate' takes 1 argument"),
        ("#{Name | Truncate five}", "whole number"),
        ("#{Name | ToUpper please}", "'ToUpper' takes 0 argument"),
        ("#{Name | }", "empty filter"),
        ("#{Name", "unclosed"),
        ("#{Name | ToUpper", "unclosed"),
        ("#{}", "does not name a variable"),
        ("#{Db Host}", "does not name a variable"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(VariableError) as caught:
        substitute(text, lookup(var("Name", "x")), where="steps.web.command")
    assert fragment in caught.value.message
    assert "steps.web.command" in caught.value.message


def test_an_undefined_variable_is_named_with_where_it_was_used() -> None:
    where = "steps.web.containers.web.environment.DB_HOST"
    with pytest.raises(UndefinedVariableError) as caught:
        substitute("#{DbHost}", {}, where=where)
    assert caught.value.message == f"undefined variable 'DbHost' in {where}"
    assert caught.value.details == {"variable": "DbHost", "where": where, "chain": []}


def test_an_undefined_variable_inside_another_value_shows_the_way_there() -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        substitute("#{Url}", lookup(var("Url", "https://#{Host}")), where="steps.web")
    assert "undefined variable 'Host'" in caught.value.message
    assert "steps.web (through Url)" in caught.value.message


def test_an_undefined_nested_name_is_reported_as_built() -> None:
    with pytest.raises(UndefinedVariableError, match="'DbQa'"):
        substitute("#{Db#{Env}}", lookup(var("Env", "Qa")), where="w")


def test_a_loop_is_an_error_showing_the_chain() -> None:
    variables = lookup(var("A", "x#{B}"), var("B", "#{a}"))
    with pytest.raises(VariableCycleError) as caught:
        substitute("#{A}", variables, where="steps.web.command")
    assert "A -> B -> A" in caught.value.message
    assert "steps.web.command" in caught.value.message
    assert caught.value.details["chain"] == ["A", "B", "A"]


def test_a_variable_referring_to_itself_is_a_loop() -> None:
    with pytest.raises(VariableCycleError, match="Me -> Me"):
        substitute("#{Me}", lookup(var("Me", "#{Me}!")), where="w")


def test_a_diamond_is_not_a_loop() -> None:
    variables = (var("Top", "#{L}-#{R}"), var("L", "#{Base}"), var("R", "#{Base}"))
    assert sub("#{Top}", *variables, var("Base", "b")) == "b-b"


def test_system_variables_are_plain_values_that_are_not_expanded_again() -> None:
    system = {"Shiplane.Step[db].Output[Note]": "#{NotAVariable}"}
    assert sub("#{Shiplane.Step[db].Output[Note]}", **system) == "#{NotAVariable}"
    assert sub("v#{shiplane.release.number}", **{"Shiplane.Release.Number": "1.4.0"}) == "v1.4.0"


# --------------------------------------------------------------------------- sensitive values

PASSWORD = Variable(name="DbPassword", sensitive=True, secret_ref="/shiplane/web/DbPassword")


def test_a_sensitive_reference_is_tracked_and_is_the_whole_secret() -> None:
    result = substitute("#{DbPassword}", lookup(PASSWORD), where="w")
    assert result.sensitive == (PASSWORD,)
    assert result.secret == PASSWORD


def test_sensitive_values_are_tracked_through_nesting() -> None:
    variables = lookup(
        PASSWORD, var("Alias", "#{DbPassword}"), var("Dsn", "pg://u:#{Alias}@db"), var("X", "x")
    )
    through_alias = substitute("#{Alias}", variables, where="w")
    assert through_alias.sensitive == (PASSWORD,) and through_alias.secret == PASSWORD
    embedded = substitute("#{Dsn}", variables, where="w")
    assert embedded.sensitive == (PASSWORD,) and embedded.secret is None
    assert substitute("#{X}", variables, where="w").sensitive == ()


@pytest.mark.parametrize("text", ["pre-#{DbPassword}", "#{DbPassword | ToUpper}", "#{A}#{B}"])
def test_a_sensitive_value_in_a_larger_text_or_filtered_is_not_the_whole_secret(
    text: str,
) -> None:
    variables = lookup(PASSWORD, var("A", "#{DbPassword}"), var("B", ""))
    result = substitute(text, variables, where="w")
    assert result.sensitive == (PASSWORD,)
    assert result.secret is None


def test_a_sensitive_value_used_to_build_a_name_is_tracked() -> None:
    key = Variable(name="Key", value="Prod", sensitive=True, secret_ref="/k")
    result = substitute("#{Db#{Key}}", lookup(key, var("DbProd", "db")), where="w")
    assert result.text == "db" and result.sensitive == (key,)


def test_a_sensitive_value_is_opaque() -> None:
    hydrated = Variable(name="Pw", value="p#{ss}", sensitive=True, secret_ref="/pw")
    assert substitute("#{Pw}", lookup(hydrated), where="w").text == "p#{ss}"


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", set()),
        ("#{A} and #{b | ToUpper} and #{A}", {"a", "b"}),
        ("##{NotARef} #{Real}", {"real"}),
        ("#{Db#{Env}}", {"env"}),
        ("#{Shiplane.Release.Number}", {"shiplane.release.number"}),
    ],
)
def test_references(text: str, expected: set[str]) -> None:
    assert references(text) == expected


# --------------------------------------------------------------------------- check_cycles


def test_check_cycles_accepts_a_chain_without_loops() -> None:
    check_cycles([var("A", "#{B}"), var("B", "#{C} #{Shiplane.Release.Number}"), var("C", "c")])


def test_check_cycles_finds_a_loop_across_scopes() -> None:
    variables = [
        var("A", "plain"),
        var("A", "#{B}", environments=["prod"]),
        var("B", "#{C}", tenants=["acme"]),
        var("C", "#{a}", steps=["api"]),
    ]
    with pytest.raises(VariableCycleError) as caught:
        check_cycles(variables)
    assert "A -> B -> C -> A" in caught.value.message


def test_check_cycles_finds_a_self_reference() -> None:
    with pytest.raises(VariableCycleError, match="Self -> Self"):
        check_cycles([var("Self", "#{self}")])


# --------------------------------------------------------------------------- system variables


def test_system_variables() -> None:
    image = ImageRef(
        repository="web",
        registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        tag="1.4.0",
        digest="sha256:" + "a" * 64,
    )
    system = system_variables(
        "1.4.0",
        "stable",
        "prod",
        None,
        "shop",
        "dep-42",
        "prod-eu-1",
        packages={"web": image},
        step_outputs={"db": {"Endpoint": "db.example.com"}},
    )
    assert system["shiplane.tenant.name"] == ""
    assert all(key == key.lower() for key in system)
    text = (
        "#{Shiplane.Release.Number} #{Shiplane.Release.Channel} #{Shiplane.Environment.Name} "
        "[#{Shiplane.Tenant.Name}] #{Shiplane.Project.Name} #{Shiplane.Deployment.Id} "
        "#{Shiplane.Target.Name} #{Shiplane.Package[web].Tag} #{Shiplane.Package[web].Repository} "
        "#{Shiplane.Step[db].Output[Endpoint]}"
    )
    assert substitute(text, system, where="w").text == (
        "1.4.0 stable prod [] shop dep-42 prod-eu-1 1.4.0 web db.example.com"
    )
    assert sub("#{Shiplane.Package[web].Image}", **system) == image.image
    assert sub("#{shiplane.package[WEB].digest}", **system) == image.digest
    tenanted = system_variables("1", "c", "e", "acme", "p", "d", "t", {}, {})
    assert tenanted["shiplane.tenant.name"] == "acme"


def test_project_and_system_variables_combine_in_one_lookup() -> None:
    ctx = CTX
    resolved = resolve(
        [var("Image", "#{Shiplane.Release.Number}-#{Suffix}"), var("Suffix", "x")], ctx
    )
    system = system_variables("2.0.0", "stable", "prod", "acme", "shop", "d-1", "prod-eu-1")
    assert substitute("#{Image}", {**system, **resolved}, where="w").text == "2.0.0-x"
