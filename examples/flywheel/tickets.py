"""Support tickets for the flywheel example: a deterministic generator of realistic customer messages.

Each ticket belongs to one of five queues. The wording varies (templates x products x order numbers x
moods), and some customers paste their e-mail address or phone number, which curation scrubs.
"""

from __future__ import annotations

import random

QUEUES = ("billing", "shipping", "returns", "technical", "account")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for order {order}. Please refund the duplicate payment.",
        "My card statement shows {price} for the {product} but the price on your site was lower.",
        "Can I get an invoice with my company's VAT number for order {order}?",
        "Why did my subscription renew at {price}? I never agreed to the new price.",
        "The payment for the {product} failed but the money left my account.",
        "Please update the billing address on my invoice for order {order}.",
        "I used a discount code but was still charged the full {price}.",
        "Do you accept payment by bank transfer for the {product}?",
    ),
    "shipping": (
        "Where is my order {order}? The tracking page has not changed for a week.",
        "The courier says my {product} was delivered but nothing arrived.",
        "Can you ship the {product} to a different address? I am moving on Friday.",
        "How long does delivery to Canada take for order {order}?",
        "My parcel {order} is stuck at customs. What do I need to do?",
        "The box for the {product} arrived crushed and the tracking shows two parcels.",
        "Is express delivery available for the {product}?",
        "Order {order} was split into two shipments and only one came.",
    ),
    "returns": (
        "I want to return the {product}; it is not what I expected.",
        "How do I send back order {order}? I need a return label.",
        "The {product} I received is the wrong colour. Can I exchange it?",
        "Is it too late to return the {product}? I bought it five weeks ago.",
        "I returned order {order} two weeks ago and still have no refund for the item.",
        "Can I return the {product} to a store instead of mailing it?",
        "The size of the {product} is wrong, I would like to swap it for a larger one.",
        "Do I have to pay for return shipping on order {order}?",
    ),
    "technical": (
        "My {product} will not turn on after the latest update.",
        "The app keeps crashing when I pair it with the {product}.",
        "The {product} makes a loud buzzing noise when it runs.",
        "How do I reset the {product} to factory settings?",
        "The display on my {product} flickers and then goes black.",
        "The {product} loses its Wi-Fi connection every few minutes.",
        "The battery of the {product} drains in an hour. Is it faulty?",
        "Error code E{code} shows on the {product}. What does it mean?",
    ),
    "account": (
        "I cannot log in to my account; the reset e-mail never arrives.",
        "Please delete my account and all my data.",
        "How do I change the e-mail address on my account?",
        "Someone else seems to have logged in to my account. Please lock it.",
        "I want to merge my two accounts into one.",
        "My account shows somebody else's order history.",
        "How can I turn off the marketing e-mails for my account?",
        "Two-factor authentication codes are not reaching my phone.",
    ),
}

PRODUCTS = (
    "Kestrel Headphones",
    "Orion Blender",
    "Nimbus Kettle",
    "Atlas Backpack",
    "Vega Smartwatch",
    "Luna Desk Lamp",
    "Polaris Router",
    "Cobalt Vacuum",
    "Sierra Tent",
    "Echo Speaker",
)
OPENERS = ("", "Hello, ", "Hi there. ", "Good morning, ", "Urgent: ", "Sorry to bother you, ")
CLOSERS = ("", " Thanks.", " Thank you!", " Please help.", " This is really frustrating.")
CONTACTS = ("", "", "", " You can reach me at {email}.", " Call me on {phone}.")


#: The app's traffic uses the first six templates of each queue; the eval set only the last two, so the
#: fine-tuned model is measured on phrasings it never trained on.
TRAFFIC = slice(0, 6)
HELD_OUT = slice(6, 8)


def ticket(rng: random.Random, queue: str, templates: slice) -> dict[str, str]:
    """One ticket: {"ticket": text, "queue": gold queue}."""
    body = rng.choice(TEMPLATES[queue][templates]).format(
        order=f"#{rng.randint(100000, 999999)}",
        product=rng.choice(PRODUCTS),
        price=f"${rng.randint(10, 400)}.{rng.choice(('00', '49', '99'))}",
        code=rng.randint(10, 99),
    )
    contact = rng.choice(CONTACTS).format(
        email=f"{rng.choice(('ana', 'li.wei', 'sam', 'j.doe'))}{rng.randint(1, 99)}@example.com",
        phone=f"+1 415 555 {rng.randint(1000, 9999)}",
    )
    opener = rng.choice(OPENERS)
    if opener.endswith(", ") and not body.startswith("I "):
        body = body[0].lower() + body[1:]
    return {"ticket": opener + body + contact + rng.choice(CLOSERS), "queue": queue}


def tickets(n: int, seed: int, templates: slice = TRAFFIC) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [ticket(rng, QUEUES[i % len(QUEUES)], templates) for i in range(n)]
