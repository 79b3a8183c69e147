"""The login page and My book: scoped, searchable, bounded queries."""

from tests.factories import AccountFactory


def test_login_page_renders_and_logs_in(world, client):
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'name="username"' in page.content

    response = client.post("/login/", {"username": "csm_a", "password": "pw"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_home_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/")


def test_my_book_lists_only_accounts_in_scope(world, client, account_a, account_b):
    client.force_login(world.csm_a)
    page = client.get("/").content.decode()
    assert "Acme" in page
    assert "Globex" not in page


def test_my_book_search_by_domain(world, client):
    AccountFactory(name="Hooli", domain="hooli.xyz", team=world.team_a)
    AccountFactory(name="Pied Piper", domain="piedpiper.com", team=world.team_a)
    client.force_login(world.manager_a)
    page = client.get("/", {"q": "hooli.x"}).content.decode()
    assert "Hooli" in page
    assert "Pied Piper" not in page


def test_my_book_query_count_does_not_grow_with_rows(world, client, django_assert_max_num_queries):
    AccountFactory.create_batch(30, owner=world.csm_a, team=world.team_a)
    client.force_login(world.csm_a)
    # session, user, roles, top bar (2), count, page, sparklines, band totals, filter options (2)
    with django_assert_max_num_queries(11):
        assert client.get("/").status_code == 200
