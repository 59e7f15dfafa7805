"""Teacher creates a class → a student registers with the code → both see the right pages,
in Japanese and in English, with the teacher's roster updating live over the websocket."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.conftest import PASSWORD, add_member, make_course, make_user
from webapp.accounts.models import Course, Membership

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORDS = {
    "ja": {
        "my_classes": "マイクラス",
        "create": "クラスを作成",
        "roster": "名簿",
        "join_code": "参加コード",
        "sign_in": "ログイン",
        "register": "登録",
        "your_work": "このクラスでのあなたの作業",
    },
    "en": {
        "my_classes": "My classes",
        "create": "Create class",
        "roster": "Roster",
        "join_code": "Join code",
        "sign_in": "Sign in",
        "register": "Register",
        "your_work": "Your work in this class",
    },
}


def sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base}/courses/")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_teacher_creates_class_and_student_registers_with_the_code(live_url, new_page, lang):
    words = WORDS[lang]
    make_user(f"sensei_{lang}", teacher=True, display_name="Sato")

    teacher = new_page(lang)
    teacher.goto(f"{live_url}/")
    expect(teacher.locator("html")).to_have_attribute("lang", lang)
    shot(teacher, f"{lang}-01-home")
    sign_in(teacher, live_url, f"sensei_{lang}")
    expect(teacher.locator("h1")).to_have_text(words["my_classes"])
    shot(teacher, f"{lang}-02-teacher-no-classes")

    teacher.fill("#id_create-name", f"画像認識演習 {lang}")
    teacher.get_by_role("button", name=words["create"]).click()
    teacher.wait_for_url(f"{live_url}/courses/*/")
    course = Course.objects.get(name=f"画像認識演習 {lang}")
    code = teacher.locator("#join-code").inner_text().strip()
    assert code == course.join_code
    expect(teacher.locator("#roster-title")).to_contain_text(words["roster"])
    expect(teacher.locator("#live-state.on")).to_be_visible()  # websocket connected
    shot(teacher, f"{lang}-03-teacher-new-class")

    student = new_page(lang)
    student.goto(f"{live_url}/accounts/register/")
    shot(student, f"{lang}-04-register")
    student.fill("#id_join_code", code.lower())
    student.fill("#id_username", f"gakusei_{lang}")
    student.fill("#id_password", "sakura-blossom-7")
    student.fill("#id_password2", "sakura-blossom-7")
    student.locator("main form button[type=submit]").click()
    student.wait_for_url(f"{live_url}/courses/")
    expect(student.locator(".course-card h2")).to_have_text(f"画像認識演習 {lang}")
    shot(student, f"{lang}-05-student-my-classes")

    # The teacher's open page learns of the new student without a reload.
    expect(teacher.locator(f"tr[data-username='gakusei_{lang}']")).to_be_visible()
    expect(teacher.locator("#member-count")).to_have_text("2")
    shot(teacher, f"{lang}-06-teacher-roster-live")

    student.locator(".course-card a").click()
    expect(student.locator("h2", has_text=words["your_work"])).to_be_visible()
    assert code not in student.content()
    assert student.locator("#roster").count() == 0
    shot(student, f"{lang}-07-student-class-page")
    assert Membership.objects.get(course=course, user__username=f"gakusei_{lang}").role == "student"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_wrong_password_and_other_class_pages_are_refused_clearly(live_url, new_page, lang):
    owner = make_user(f"owner_{lang}", teacher=True)
    course = make_course(owner, "秘密のクラス")
    make_user(f"outsider_{lang}")

    page = new_page(lang)
    page.goto(f"{live_url}/accounts/login/")
    page.fill("#id_username", f"outsider_{lang}")
    page.fill("#id_password", "not-my-password")
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".alert")).to_be_visible()
    shot(page, f"{lang}-08-login-error")

    sign_in(page, live_url, f"outsider_{lang}")
    shot(page, f"{lang}-09-student-no-classes")
    response = page.goto(f"{live_url}/courses/{course.pk}/")
    assert response.status == 404
    assert "秘密のクラス" not in page.content()
    shot(page, f"{lang}-10-other-class-404")


def test_teacher_manages_roster_settings_and_tokens(live_url, new_page, tmp_path):
    teacher = make_user("kanri", teacher=True, display_name="Kanri Sensei")
    course = make_course(teacher, "Deep learning 2")
    student = make_user("taro", display_name="Taro", created_in_course=course)
    add_member(course, student)

    page = new_page("en")
    sign_in(page, live_url, "kanri")
    page.goto(f"{live_url}/courses/{course.pk}/")
    shot(page, "en-11-teacher-class-settings")

    roster = tmp_path / "roster.csv"
    roster.write_text("username,display_name\nhanako,山田花子\nbad name!,x\n", encoding="utf-8")
    page.set_input_files("input[name=roster]", str(roster))
    page.get_by_role("button", name="Import roster").click()
    expect(page.locator("h1")).to_have_text("Roster import")
    expect(page.locator("tr.refused")).to_have_count(1)
    shot(page, "en-12-roster-import-result")

    page.goto(f"{live_url}/courses/{course.pk}/")
    page.locator("tr[data-username='taro'] button[value=reset_password]").click()
    new_password = page.locator("#new-password").inner_text().strip()
    student.refresh_from_db()
    assert student.check_password(new_password)
    shot(page, "en-13-password-reset")

    page.goto(f"{live_url}/accounts/settings/")
    page.fill("#id_name", "colab notebook")
    page.get_by_role("button", name="New token").click()
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("mnb_")
    shot(page, "en-14-account-tokens")


def test_japanese_teacher_pages(live_url, new_page):
    teacher = make_user("sensei_ja2", teacher=True, display_name="佐藤先生")
    course = make_course(teacher, "深層学習 第1回")
    add_member(course, make_user("hanako", display_name="山田花子"))
    page = new_page("ja")
    sign_in(page, live_url, "sensei_ja2")
    shot(page, "ja-11-teacher-my-classes")
    page.goto(f"{live_url}/courses/{course.pk}/")
    expect(page.locator("#roster-title")).to_contain_text("名簿")
    shot(page, "ja-12-teacher-class-settings")
    page.goto(f"{live_url}/accounts/settings/")
    shot(page, "ja-13-account")


def test_language_switch_sign_out_and_admin(live_url, new_page):
    admin = make_user("kanrisha", teacher=True)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    page = new_page("ja")
    sign_in(page, live_url, "kanrisha")
    expect(page.locator("h1")).to_have_text("マイクラス")
    page.locator(".langswitch button[value=en]").click()
    expect(page.locator("h1")).to_have_text("My classes")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator(".langswitch button[value=ja]").click()
    expect(page.locator("h1")).to_have_text("マイクラス")

    page.locator("nav.mainnav a[href='/admin/']").click()
    expect(page.locator("#site-name")).to_be_visible()
    shot(page, "ja-14-admin")

    page.goto(f"{live_url}/courses/")
    page.locator("header form[action='/accounts/logout/'] button").click()
    page.wait_for_url(f"{live_url}/accounts/login/")
    assert page.goto(f"{live_url}/courses/").url.startswith(f"{live_url}/accounts/login/")
