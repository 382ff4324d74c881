"""Build Samizdat's own evaluation pages: original articles inside varied, heavy boilerplate."""
import html, pathlib, sys
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from articles import ARTICLES

OUT = pathlib.Path(__file__).resolve().parent
E = html.escape

def body_html(paras, p="<p>{}</p>", h="<h2>{}</h2>", ul=("<ul>", "</ul>"), li="<li>{}</li>"):
    out, in_list = [], False
    for para in paras:
        if para.startswith("- "):
            if not in_list:
                out.append(ul[0]); in_list = True
            out.append(li.format(E(para[2:])))
            continue
        if in_list:
            out.append(ul[1]); in_list = False
        out.append(h.format(E(para[3:])) if para.startswith("## ") else p.format(E(para)))
    if in_list:
        out.append(ul[1])
    return "\n".join(out)

def truth(paras):
    return "\n".join(p[3:] if p.startswith("## ") else p[2:] if p.startswith("- ") else p for p in paras) + "\n"

NAV = """<nav class="site-nav"><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li><li><a href="/asia">Asia</a></li><li><a href="/opinion">Opinion</a></li><li><a href="/video">Video</a></li><li><a href="/login">Log in</a></li></ul></nav>"""
COOKIE = """<div id="cookie-consent"><p>We use cookies and similar technologies to personalise content and ads, and to analyse our traffic. By continuing to browse you accept our use of cookies.</p><a href="#">Accept all</a> <a href="#">Manage preferences</a></div>"""
SHARE = """<div class="share-tools"><span>Share this article</span><a href="#">Facebook</a><a href="#">Twitter</a><a href="#">Email</a><a href="#">Copy link</a></div>"""
RELATED = """<section class="related-stories"><h3>Related stories</h3><ul><li><a href="/a1">Activists detained ahead of national holiday, rights groups say</a></li><li><a href="/a2">Why a small border town became a centre of online dissent</a></li><li><a href="/a3">Court hears appeal of journalist sentenced for Facebook posts</a></li></ul></section>"""
FOOTER = """<footer><p>© 2026 The Valley Observer. All rights reserved.</p><p><a href="/about">About us</a> | <a href="/contact">Contact</a> | <a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a></p><p>The Valley Observer is an independent newsroom funded by its readers. Support our journalism with a monthly donation.</p></footer>"""
COMMENTS = """<div id="comments"><h3>12 comments</h3>
<div class="comment"><p class="who">Minh T.</p><p>This is exactly what happened in my home town last year, and nobody wrote about it at the time. Thank you for reporting this.</p></div>
<div class="comment"><p class="who">reader_2291</p><p>I think the government has a point about the electricity, but the compensation is far too low for families who lose everything they own.</p></div>
<div class="comment"><p class="who">Hoa</p><p>Keep going! We are watching from abroad and sharing the story with everyone we know, even if it is blocked at home.</p></div>
<form class="reply"><textarea>Leave a reply</textarea><button>Post comment</button></form></div>"""

def page(lang, title, inner, head_extra="", dir_attr=""):
    return f"""<!DOCTYPE html>
<html lang="{lang}"{dir_attr}><head><meta charset="utf-8"><title>{E(title)} | The Valley Observer</title>
<meta property="og:title" content="{E(title)}"><meta property="og:site_name" content="The Valley Observer">
<script>window.dataLayer=[];function gtag(){{dataLayer.push(arguments)}}</script>
<style>.hidden{{display:none}}</style>{head_extra}</head>
<body>{inner}
<script src="/static/app.js"></script></body></html>"""

def layout_semantic(a):
    # Clean HTML5: header/nav/main/article/aside/footer, with comments and a share bar.
    inner = f"""<a class="skip-link" href="#main">Skip to main content</a>
<header class="masthead"><a href="/" class="logo">The Valley Observer</a>{NAV}<a href="/subscribe" class="cta">Subscribe</a></header>
{COOKIE}
<main id="main"><article>
<header><h1>{E(a['title'])}</h1><p class="byline">By Linh Pham and Daniel Ortiz<time datetime="2026-03-04">Updated 4 March 2026, 10:04 GMT</time></p></header>
{SHARE}
<figure><img src="/img/dam.jpg" alt=""><figcaption>Villagers at the protest camp on Monday. Photo: Valley Observer</figcaption></figure>
{body_html(a['paras'])}
<div class="tags">Tags: <a href="/t/protest">Protest</a> <a href="/t/energy">Energy</a></div>
{SHARE}
</article>
{RELATED}
{COMMENTS}
</main>
<aside class="sidebar"><h3>Most read</h3><ol><li><a href="/x">Floods cut off mountain villages for a second day</a></li><li><a href="/y">Opinion: the quiet cost of self-censorship</a></li></ol>
<div class="ad-slot">Advertisement</div></aside>
{FOOTER}"""
    return page(a["lang"], a["title"], inner)

def layout_divsoup(a):
    # No semantic tags, obfuscated class names, byline and dateline run together in one div.
    paras = "\n".join(f'<div class="x7f">{E(p[3:]) if p.startswith("## ") else E(p[2:]) if p.startswith("- ") else E(p)}</div>' for p in a["paras"])
    inner = f"""<div class="a1"><div class="a2"><a href="/">Home</a> · <a href="/news">News</a> · <a href="/world">World</a> · <a href="/business">Business</a> · <a href="/login">Sign in</a></div></div>
<div class="q9"><div class="q9-i">We use cookies to improve your experience. By continuing you accept our cookie policy. <a href="#">OK</a></div></div>
<div class="w1"><div class="w2"><div class="t0">{E(a['title'])}</div>
<div class="z3">By Reporter Staff | Published March 4, 2026 10:32 AM | Updated March 5, 2026</div>
<div class="z4"><a href="#">f</a> <a href="#">t</a> <a href="#">in</a> <a href="#">Share</a></div>
<div class="b5">{paras}</div>
<div class="z5"><div>Read more:</div><div><a href="/r1">Unions call for national day of action over pay</a></div><div><a href="/r2">Education budget cut by 8 percent in new plan</a></div><div><a href="/r3">Parents rally outside ministry as schools stay shut</a></div></div>
</div><div class="w3"><div><a href="/p">Trending now: floods, exam results and a new bridge</a></div><div>ADVERTISEMENT</div></div></div>
<div class="f0">Copyright 2026 Regional News Network. All rights reserved. <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></div>"""
    return page(a["lang"], a["title"], inner)

def layout_table(a):
    # An old table layout with <br><br> between paragraphs, font tags and a left menu column.
    paras = "<br><br>\n".join(E(p[3:]) if p.startswith("## ") else E(p[2:]) if p.startswith("- ") else E(p) for p in a["paras"])
    inner = f"""<table width="100%"><tr><td colspan="2"><font size="5">LEGAL NEWS DAILY</font> <a href="/">Home</a> | <a href="/archive">Archive</a> | <a href="/contact">Contact</a></td></tr>
<tr><td width="160" valign="top"><a href="/courts">Courts</a><br><a href="/laws">Laws</a><br><a href="/people">People</a><br><a href="/rss">RSS</a></td>
<td valign="top"><font size="4"><b>{E(a['title'])}</b></font><br><font size="1">Friday, 6 March 2026 - 14:20</font><br><br>
<font face="Arial">{paras}</font><br><br>
<font size="1"><a href="/print">Print this page</a> | <a href="/mail">Email to a friend</a></font></td></tr>
<tr><td colspan="2"><font size="1">Legal News Daily © 2026 — all rights reserved.</font></td></tr></table>"""
    return page(a["lang"], a["title"], inner)

def layout_vn(a):
    # A Vietnamese portal: top menu, breadcrumb, date line, related list and footer in Vietnamese.
    inner = f"""<div class="header"><ul class="main-menu"><li><a href="/">Trang chủ</a></li><li><a href="/thoi-su">Thời sự</a></li><li><a href="/the-gioi">Thế giới</a></li><li><a href="/kinh-doanh">Kinh doanh</a></li><li><a href="/dang-nhap">Đăng nhập</a></li></ul></div>
<div class="breadcrumb"><a href="/">Trang chủ</a> › <a href="/thoi-su">Thời sự</a></div>
<div class="container"><div class="col-left">
<span class="date">Thứ năm, 5/3/2026, 08:15 (GMT+7)</span>
<h1 class="title-detail">{E(a['title'])}</h1>
<div class="fck_detail">{body_html(a['paras'], p='<p class="Normal">{}</p>')}
<p class="author_mail"><strong>Minh Anh</strong></p></div>
<div class="social-share"><a href="#">Chia sẻ</a> <a href="#">Facebook</a> <a href="#">Zalo</a></div>
<div class="box-tinlienquan"><h3>Tin liên quan</h3><ul><li><a href="/1">Nhiều người bị triệu tập vì bình luận trên Facebook</a></li><li><a href="/2">Quốc hội thảo luận dự thảo luật an ninh mạng sửa đổi</a></li></ul></div>
</div><div class="col-right"><div class="box-xemnhieu"><h3>Xem nhiều</h3><ul><li><a href="/3">Giá vàng hôm nay tăng mạnh</a></li><li><a href="/4">Thời tiết miền Bắc chuyển lạnh</a></li></ul></div></div></div>
<div id="footer"><p>Báo điện tử Tin Mới — Giấy phép số 123/GP-BTTTT. Ghi rõ nguồn khi phát hành lại thông tin từ website này.</p></div>"""
    return page(a["lang"], a["title"], inner)

def layout_rtl(a):
    # Right-to-left page with Arabic/Hebrew menus, a share bar and a footer in the same script.
    menu = {"ar": ["الرئيسية", "أخبار", "رأي", "تسجيل الدخول"], "he": ["ראשי", "חדשות", "דעות", "התחברות"]}[a["lang"]]
    footer = {"ar": "جميع الحقوق محفوظة © 2026 — سياسة الخصوصية — اتصل بنا", "he": "כל הזכויות שמורות © 2026 — מדיניות פרטיות — צור קשר"}[a["lang"]]
    share = {"ar": "شارك هذا المقال", "he": "שתפו את הכתבה"}[a["lang"]]
    related = {"ar": ["اعتقال ناشطين قبل الانتخابات", "قانون جديد يقيد الإعلام المستقل"], "he": ["הפגנה מול בניין העירייה", "חוק חדש מגביל את התקשורת"]}[a["lang"]]
    inner = f"""<div id="topnav">{''.join(f'<a href="/{i}">{E(m)}</a> ' for i, m in enumerate(menu))}</div>
<div class="content-wrapper"><div class="story"><h1>{E(a['title'])}</h1><div class="story-meta">2026/03/05 — 09:40</div>
<div class="story-body">{body_html(a['paras'])}</div>
<div class="share">{E(share)} <a href="#">X</a> <a href="#">Facebook</a></div>
<div class="related"><ul>{''.join(f'<li><a href="/r{i}">{E(r)}</a></li>' for i, r in enumerate(related))}</ul></div></div></div>
<div class="footer">{E(footer)}</div>"""
    return page(a["lang"], a["title"], inner, dir_attr=' dir="rtl"')

def layout_aspnet(a):
    # The whole page inside one <form> (ASP.NET WebForms), inline ads and "Read more" inside the body.
    paras = a["paras"]
    mid = len(paras) // 2
    body = body_html(paras[:mid]) + """
<div class="inline-promo"><a href="/r9">READ MORE: Thousands march in capital over cost of living</a></div>
<div class="adunit"><div>Advertisement</div><div>Scroll to continue with content</div></div>
""" + body_html(paras[mid:])
    inner = f"""<form method="post" action="./article.aspx" id="form1"><input type="hidden" name="__VIEWSTATE" value="abc">
<div id="hdr"><div id="logo"><a href="/">DAILY TRIBUNE</a></div><div id="menu"><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a> <a href="/weather">Weather</a></div></div>
<div id="pagebody"><div id="ctl00_content">
<h1>{E(a['title'])}</h1><div class="articleinfo">Staff reporter Thursday, March 5, 2026</div>
<div id="ctl00_articletext">{body}</div>
<div id="newsletter-box"><p>Sign up for our morning briefing: the day's top stories in your inbox before breakfast.</p><input type="email"><button>Sign up</button></div>
</div><div id="rightcol"><h3>Popular</h3><div><a href="/p1">Ferry service resumes after storm damage is repaired</a></div><div><a href="/p2">New market hall opens in the old tram depot</a></div></div></div>
<div id="ftr">Daily Tribune Ltd. Registered in 1998. Terms and conditions apply. All rights reserved.</div></form>"""
    return page(a["lang"], a["title"], inner)

def layout_blog(a):
    # A personal blog: widget sidebar, long comment thread, author box.
    inner = f"""<div id="page"><div id="masthead"><h2 class="site-title"><a href="/">Ink and Exile</a></h2><p class="site-description">A blog about words that travel</p></div>
<div id="primary"><div class="post hentry"><h1 class="entry-title">{E(a['title'])}</h1>
<div class="entry-meta">Posted on March 3, 2026 by <a href="/author/k">K.</a></div>
<div class="entry-content">{body_html(a['paras'])}</div>
<div class="entry-footer">Posted in <a href="/c/translation">Translation</a> | <a href="#comments">7 Comments</a></div>
<div class="author-box"><p>K. is a translator and editor who has lived abroad since 2012. She writes about censorship, memory and language.</p></div></div>
{COMMENTS}</div>
<div id="secondary" class="widget-area"><div class="widget"><h3>Archives</h3><ul><li><a href="/2026/02">February 2026</a></li><li><a href="/2026/01">January 2026</a></li></ul></div>
<div class="widget"><h3>Subscribe</h3><p>Enter your email address to follow this blog and receive notifications of new posts by email.</p></div></div></div>
<div id="colophon">Proudly powered by a blog engine. Theme by someone.</div>"""
    return page(a["lang"], a["title"], inner)

LAYOUTS = {
    "river-dam-protest": layout_semantic, "press-freedom-report": layout_aspnet,
    "library-closure": layout_divsoup, "vn-blogger-sentenced": layout_vn, "vn-internet-law": layout_semantic,
    "ar-journalist-detained": layout_rtl, "forum-teachers-strike": layout_divsoup,
    "court-appeal-table": layout_table, "he-radio-station": layout_rtl, "blog-translation-notes": layout_blog,
}
for name, a in ARTICLES.items():
    (OUT / f"{name}.html").write_text(LAYOUTS[name](a), encoding="utf-8")
    (OUT / f"{name}.txt").write_text(truth(a["paras"]), encoding="utf-8")
print(len(ARTICLES), "pages")
