"""Names, places, products and comment pools of Hidden Cafe (fixed lists; order matters for determinism)."""
from __future__ import annotations

COMPANY_NAME = "Hidden Cafe"
DOMAIN = "hidden-cafe.example.com"

# (code, odoo id, en name, vi name, fr name, share, cities, phone prefix, lang, ga4 name)
COUNTRIES = [
    ("VN", 241, "Vietnam", "Việt Nam", "Viêt Nam", 0.34, ["Ho Chi Minh City", "Hanoi", "Da Nang", "Da Lat", "Hai Phong"], "+84", "vi_VN", "Vietnam"),
    ("US", 233, "United States", "Hoa Kỳ", "États-Unis", 0.18, ["New York", "San Francisco", "Seattle", "Austin", "Chicago"], "+1", "en_US", "United States"),
    ("GB", 231, "United Kingdom", "Vương quốc Anh", "Royaume-Uni", 0.15, ["London", "Leeds", "Manchester", "Bristol", "Edinburgh"], "+44", "en_GB", "United Kingdom"),
    ("FR", 75, "France", "Pháp", "France", 0.11, ["Paris", "Lyon", "Marseille", "Bordeaux", "Lille"], "+33", "fr_FR", "France"),
    ("SG", 197, "Singapore", "Singapore", "Singapour", 0.10, ["Singapore"], "+65", "en_US", "Singapore"),
    ("DE", 57, "Germany", "Đức", "Allemagne", 0.05, ["Berlin", "Hamburg", "Munich"], "+49", "de_DE", "Germany"),
    ("AU", 13, "Australia", "Úc", "Australie", 0.04, ["Sydney", "Melbourne"], "+61", "en_AU", "Australia"),
    ("JP", 113, "Japan", "Nhật Bản", "Japon", 0.03, ["Tokyo", "Osaka"], "+81", "ja_JP", "Japan"),
]

FIRST_NAMES = {
    "VN": ["Hương", "Minh", "Anh", "Thảo", "Quang", "Ngọc", "Linh", "Đức", "Tuấn", "Hà", "Phương", "Trang", "Khánh", "Việt", "Hải", "Lan", "Bảo", "Thúy"],
    "US": ["Olivia", "James", "Emma", "Michael", "Sophia", "David", "Jennifer", "Kevin", "Ashley", "Daniel", "Megan", "Chris"],
    "GB": ["Oliver", "Amelia", "Harry", "Isla", "Jack", "Patricia", "George", "Poppy", "Charlotte", "William", "Siobhán", "Niamh"],
    "FR": ["Éloïse", "François", "Zoë", "Gaëlle", "Léa", "Hugo", "Chloé", "Mathéo", "Inès", "Raphaël", "Céline", "Noël"],
    "SG": ["Wei Ling", "Jun Jie", "Hui Min", "Kai", "Xin Yi", "Priya", "Arjun", "Siti", "Darren", "Rachel"],
    "DE": ["Jürgen", "Lena", "Lukas", "Sören", "Anja", "Björn", "Mia", "Jörg"],
    "AU": ["Chloe", "Liam", "Matilda", "Noah", "Ruby", "Cooper"],
    "JP": ["Yuki", "Haruto", "Sakura", "Ren", "Aoi", "Sōta"],
}
LAST_NAMES = {
    "VN": ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"],
    "US": ["Smith", "Johnson", "Brown", "Moore", "Clark", "Adams", "Garcia", "Miller", "Davis", "O'Brien"],
    "GB": ["Green", "Taylor", "Wilson", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Hughes", "Ó Briain"],
    "FR": ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard", "Rousseau", "Fournier", "Muñoz"],
    "SG": ["Tan", "Lim", "Lee", "Ng", "Wong", "Goh", "Chua", "Kumar", "Abdullah"],
    "DE": ["Müller", "Schmidt", "Schäfer", "Weiß", "Krüger", "Groß"],
    "AU": ["Jones", "Williams", "Kelly", "Mitchell"],
    "JP": ["Satō", "Suzuki", "Takahashi", "Tanaka", "Itō"],
}
EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "mail.example.com", "icloud.com", "proton.me"]

COMPANY_WORDS_A = ["Saigon", "Lotus", "Bamboo", "Mekong", "Highland", "Riverside", "Golden", "Harbour", "Maple", "Blue Door"]
COMPANY_WORDS_B = ["Bistro", "Co-working", "Hotel", "Bakery", "Office Supplies", "Catering", "Books & Coffee", "Studio", "Deli", "Kitchen"]

# (category, en name, vi name, list price cents, variants [(code suffix, price factor)])
PRODUCTS = [
    ("Coffee Beans", "Arabica Beans", "Hạt Arabica", 1490, [("250", 1.0), ("1K", 3.4)]),
    ("Coffee Beans", "Robusta Beans", "Hạt Robusta", 1190, [("250", 1.0), ("1K", 3.3)]),
    ("Coffee Beans", "Da Lat Single Origin", "Cà phê Đà Lạt", 1890, [("250", 1.0)]),
    ("Coffee Beans", "Espresso Blend", "Espresso pha trộn", 1590, [("250", 1.0), ("1K", 3.5)]),
    ("Coffee Beans", "Decaf Colombia", "Cà phê không caffeine", 1690, [("250", 1.0)]),
    ("Ready to Drink", "Cold Brew Bottle", "Cà phê ủ lạnh", 590, [("", 1.0)]),
    ("Ready to Drink", "Vietnamese Iced Coffee Kit", "Bộ cà phê sữa đá", 2490, [("", 1.0)]),
    ("Ready to Drink", "Drip Bags (10)", "Túi lọc (10)", 1290, [("", 1.0)]),
    ("Equipment", "Coffee Grinder", "Máy xay cà phê", 8900, [("", 1.0)]),
    ("Equipment", "Phin Filter", "Phin pha cà phê", 990, [("", 1.0)]),
    ("Equipment", "Pour-over Kettle", "Ấm rót", 4500, [("", 1.0)]),
    ("Equipment", "French Press", "Bình French Press", 3200, [("", 1.0)]),
    ("Gifts", "Gift Box", "Hộp quà", 4900, [("", 1.0)]),
    ("Gifts", "Tasting Flight Set", "Bộ nếm thử", 3900, [("", 1.0)]),
    ("Gifts", "Subscription (3 months)", "Gói đăng ký 3 tháng", 11900, [("", 1.0)]),
]
CATEGORY_PARENTS = ["All", "All / Saleable"]

POSITIVE = [
    ("en", "Best cold brew I've had 😍"), ("en", "Perfect gift box, my dad loved it 🎁"),
    ("vi", "Cà phê rất ngon, giao hàng nhanh!"), ("vi", "Hạt cà phê thơm, đóng gói cẩn thận. Cảm ơn shop!"),
    ("en", "Excellent service, very friendly support team."), ("fr", "Super café, livraison rapide ☕"),
    ("en", "Love the Da Lat single origin, ordering again ❤️"), ("vi", "Phin rất đẹp, sẽ ủng hộ dài dài 👍"),
    ("en", "Fresh roast, arrived two days early."), ("fr", "Très bon accueil, le café est excellent."),
]
NEUTRAL = [
    ("en", "Okay coffee, a bit pricey."), ("vi", "Cà phê tạm được."), ("en", "Delivery was fine, taste is average."),
    ("fr", "Correct, sans plus."), ("en", "Good beans but the website checkout is slow."),
]
NEGATIVE = [
    ("en", "Order arrived late and the box was damaged."), ("en", "Terrible support, nobody answered my email 😡"),
    ("vi", "Không bao giờ mua lại nữa!"), ("vi", "Giao hàng quá chậm, cà phê bị ẩm."),
    ("en", "The grinder broke after a week."), ("fr", "Livraison en retard, très déçu."),
    ("en", "Still waiting for a reply about my refund 😤"), ("en", "Parcel stuck for a week, no tracking updates."),
]
HOSTILE = [
    ("en", "<script>alert('xss')</script> great beans"), ("en", "Robert'); DROP TABLE sale_order;-- loved it"),
    ("en", "<b>Bold</b> &amp; beautiful <img src=x onerror=alert(1)>"), ("en", "1 OR 1=1; SELECT * FROM res_partner --"),
]
REPLIES = [
    "Thank you for your feedback!", "Cảm ơn bạn đã phản hồi! / Thank you for your feedback.",
    "We're sorry about the delay, our team will contact you.", "Merci beaucoup ! À bientôt au café.",
    "Sorry to hear that - we have refunded the shipping.",
]
TP_TITLES = {5: "Great!", 4: "Good coffee", 3: "Okay", 2: "Not great", 1: "Disappointed"}

TICKET_TOPICS = [
    # (category, subject, content, weight_if_late, weight_otherwise)
    ("SHIPPING", "Where is my order?", "My order has not arrived yet, can you check the tracking?", 6, 1),
    ("SHIPPING", "Late delivery", "Order arrived late and the box was damaged.", 5, 0.3),
    ("PRODUCT_ISSUE", "Damaged product", "The grinder broke after a week.", 1, 1.5),
    ("PRODUCT_ISSUE", "Wrong item", "Tôi nhận sai loại cà phê, vui lòng đổi giúp.", 1, 1),
    ("BILLING_ISSUE", "Refund request", "Still waiting for a reply about my refund 😤", 1, 0.8),
    ("GENERAL_INQUIRY", "Opening hours", "Quán mở cửa mấy giờ vào Chủ nhật?", 0.2, 1),
    ("GENERAL_INQUIRY", "Subscription question", "Can I pause my subscription for a month?", 0.2, 1),
]
PRIORITIES = ["LOW", "MEDIUM", "HIGH", "URGENT"]

SURVEYS = {
    "NPS": ("1", "Hidden Cafe NPS"),
    "CSAT": ("2", "Post-delivery satisfaction"),
    "CES": ("3", "Support effort score"),
}

GOOGLE_LOCATIONS = [
    ("District 1 Roastery", "Ho Chi Minh City"),
    ("Hanoi Old Quarter", "Hanoi"),
    ("Shoreditch Espresso Bar", "London"),
]

PAGES = [
    ("/", "Hidden Cafe - Specialty Coffee Roaster"),
    ("/collections/coffee", "Coffee"),
    ("/collections/equipment", "Equipment"),
    ("/blog/how-to-brew-phin", "How to brew with a phin filter"),
    ("/about", "Our story"),
    ("/stores", "Visit our cafes"),
]
TRAFFIC = [
    (("(direct)", "(none)", "(direct)"), 0.30),
    (("(organic)", "organic", "google"), 0.30),
    (("spring_sale", "email", "hubspot"), 0.10),
    (("(referral)", "referral", "instagram.com"), 0.10),
    (("brand_search", "cpc", "google"), 0.12),
    (("(organic)", "organic", "bing"), 0.03),
    (("(referral)", "referral", "facebook.com"), 0.05),
]
DEVICES = [
    (("desktop", "Windows", "Chrome"), 0.30),
    (("desktop", "Macintosh", "Safari"), 0.12),
    (("mobile", "iOS", "Safari"), 0.28),
    (("mobile", "Android", "Chrome"), 0.24),
    (("tablet", "iOS", "Safari"), 0.06),
]

# Answer key of the complaint themes the comment pools and ticket subjects plant (issue 19.6): the theme each
# non-positive comment / ticket subject is about, named like the seed issue_topics topics; None: no complaint theme
# (a general verdict, an inquiry). The learned topics (cxw/analytics/topics.py) must not mix two themes in one topic
# (tests/analytics/test_topics.py). A text about two things is keyed by its main one.
COMPLAINT_THEMES = {
    "Order arrived late and the box was damaged.": "delivery",
    "Terrible support, nobody answered my email 😡": "support_response",
    "Không bao giờ mua lại nữa!": None,
    "Giao hàng quá chậm, cà phê bị ẩm.": "delivery",
    "The grinder broke after a week.": "product_quality",
    "Livraison en retard, très déçu.": "delivery",
    "Still waiting for a reply about my refund 😤": "refund_billing",
    "Parcel stuck for a week, no tracking updates.": "delivery",
    "Okay coffee, a bit pricey.": "price",
    "Cà phê tạm được.": None,
    "Delivery was fine, taste is average.": None,
    "Correct, sans plus.": None,
    "Good beans but the website checkout is slow.": "website",
    "Where is my order?": "delivery",
    "Late delivery": "delivery",
    "Damaged product": "product_quality",
    "Wrong item": "product_quality",
    "Refund request": "refund_billing",
    "Opening hours": None,
    "Subscription question": None,
}
