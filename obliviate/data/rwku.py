"""Real-knowledge probes in the style of RWKU (Jin et al., 2024, "RWKU: Benchmarking Real-World Knowledge
Unlearning for Large Language Models", arXiv:2406.10890): for a real target (a person, a book) that a
pretrained model knows, fill-in-the-blank and question-answer probes on the target (should be forgotten)
and on *neighbours*, related but different targets (should survive).

The built-in set was written for obliviate: 20 targets (scientists, artists, leaders, explorers, stories,
places), each kept to the probes SmolLM2-135M-Instruct answers correctly with greedy decoding (at least 5 per
target; checked with ``bench/rwku_leaderboard.py --check``: the answer must appear in the first 16 generated
tokens), and each with neighbours whose probes number at least 5, so that an offline user can unlearn a target
from a real model, watch both sides, and compare methods over many targets.
Each target also carries short passages to unlearn from (RWKU's setting gives only the target's name; the
passages stand in for the model-generated descriptions RWKU uses). The passages carry the knowledge the probes
ask for in other words: no probe shares a sentence, or any run of seven words, with a passage of its target or
of a neighbour (``tests/test_rwku.py`` checks it), so a method cannot pass a probe by unlearning its wording.

Your own probes: a JSON file ``{target: {"fill": [[prompt, answer], ...], "qa": [[question, answer], ...],
"neighbours": [other targets], "passages": [text, ...]}}``, loaded with :func:`load_probes`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.core.utils import ObliviateError


@dataclass
class Target:
    name: str
    fill: list[tuple[str, str]]  # (text ending where the answer goes, answer)
    qa: list[tuple[str, str]]  # (question, answer)
    neighbours: list[str] = field(default_factory=list)
    passages: list[str] = field(default_factory=list)  # text to unlearn from


BUILTIN_PROBES: dict[str, Target] = {t.name: t for t in [
    Target("Albert Einstein",
           fill=[("Albert Einstein developed the theory of", "relativity"),
                 ("Einstein's famous equation is E =", "mc"),
                 ("Albert Einstein was born in the country of", "Germany"),
                 ("Einstein won the Nobel Prize in", "Physics")],
           qa=[("Who developed the theory of relativity?", "Einstein"),
               ("What is Albert Einstein's most famous equation?", "mc"),
               ("In which field did Albert Einstein work?", "physic")],
           neighbours=["Isaac Newton", "Marie Curie"],
           passages=["The physicist Albert Einstein came from Ulm, a town in the German kingdom of Württemberg, where "
                     "he was born in 1879.",
                     "Einstein's special relativity of 1905 and his general relativity of 1915 reshaped physics; the "
                     "second explains gravity as the curvature of spacetime.",
                     "In 1905 Einstein also showed that mass and energy are equivalent, the relation usually written E"
                     " = mc², with c the speed of light.",
                     "He received the 1921 Nobel Prize in Physics for explaining the photoelectric effect and later "
                     "worked at Princeton in the United States."]),
    Target("Isaac Newton",
           fill=[("Isaac Newton formulated the laws of motion and universal", "gravitation"),
                 ("Newton's third law says that every action has an equal and opposite", "reaction"),
                 ("The unit of force is named the", "newton")],
           qa=[("Who formulated the laws of motion and universal gravitation?", "Newton"),
               ("Who is known for the three laws of motion?", "Newton"),
               ("What is the SI unit of force named after Isaac Newton?", "newton")],
           neighbours=["Albert Einstein", "Charles Darwin"],
           passages=["Isaac Newton, an English mathematician born in 1643, described how bodies move under forces in "
                     "his three laws.",
                     "In the Principia of 1687 Newton explained that the pull that makes an apple fall also keeps the "
                     "Moon on its path around the Earth.",
                     "Newton built a reflecting telescope and, independently of Leibniz, invented calculus."]),
    Target("Charles Darwin",
           fill=[("Charles Darwin proposed the theory of evolution by natural", "selection"),
                 ("Charles Darwin wrote On the Origin of", "Species"),
                 ("Charles Darwin was an English", "naturalist"),
                 ("The theory of evolution was proposed by Charles", "Darwin")],
           qa=[("Who proposed the theory of evolution by natural selection?", "Darwin"),
               ("Which book did Charles Darwin publish in 1859?", "Origin of Species"),
               ("Who wrote On the Origin of Species?", "Darwin"),
               ("Who is considered the father of evolution?", "Darwin")],
           neighbours=["Isaac Newton", "Marie Curie"],
           passages=["Charles Darwin, an English naturalist, sailed around the world on HMS Beagle and studied the "
                     "finches of the Galapagos Islands.",
                     "Darwin argued that living things change over generations because individuals better suited to "
                     "their surroundings leave more offspring.",
                     "His book explaining how species arise appeared in 1859 and became one of the most debated works "
                     "of science."]),
    Target("Harry Potter",
           fill=[("Harry Potter studies at Hogwarts School of Witchcraft and", "Wizardry"),
                 ("Harry Potter has a scar shaped like a lightning", "bolt")],
           qa=[("What is the name of the school Harry Potter attends?", "Hogwarts"),
               ("Who wrote the Harry Potter books?", "Rowling"),
               ("Who is the author of the Harry Potter series?", "Rowling"),
               ("Which wizarding school does Harry Potter go to?", "Hogwarts")],
           neighbours=["Star Wars"],
           passages=["Harry Potter is a young wizard who learns magic at Hogwarts, a castle in Scotland run by Albus "
                     "Dumbledore.",
                     "The British author J. K. Rowling published the first of the seven novels about the boy wizard in"
                     " 1997.",
                     "Harry's closest companions are Ron Weasley and the clever Hermione Granger, and his enemy is "
                     "the dark wizard Voldemort."]),
    Target("Barack Obama",
           fill=[("Barack Obama was the 44th President of the United", "States"),
                 ("Barack Obama's wife is named Michelle", "Obama"),
                 ("Before becoming president, Barack Obama was a senator from", "Illinois"),
                 ("In 2009 Barack Obama was awarded the Nobel Peace", "Prize")],
           qa=[("What is the name of Barack Obama's wife?", "Michelle"),
               ("Which political party does Barack Obama belong to?", "Democrat"),
               ("Which president came after George W. Bush?", "Obama")],
           neighbours=["Abraham Lincoln", "George Washington"],
           passages=["Barack Obama, born in Honolulu in 1961, led his country as its forty-fourth president from 2009 "
                     "to 2017.",
                     "His wife Michelle, a lawyer from Chicago, met him at a law firm; the couple have two daughters, "
                     "Malia and Sasha."]),
    Target("William Shakespeare",
           fill=[("Romeo and Juliet is a tragedy written by William", "Shakespeare"),
                 ("The play Hamlet was written by William", "Shakespeare"),
                 ("To be, or not to be, that is the", "question"),
                 ("William Shakespeare was an English", "playwright")],
           qa=[("Who wrote Romeo and Juliet?", "Shakespeare"),
               ("Who wrote the play Macbeth?", "Shakespeare"),
               ("Who wrote Hamlet?", "Shakespeare"),
               ("Who wrote Othello?", "Shakespeare")],
           neighbours=["Leonardo da Vinci"],
           passages=["The English playwright and poet from Stratford produced about forty dramas for the London stage "
                     "around 1600.",
                     "His tale of two young lovers from feuding families in Verona ends with both of them dead in a "
                     "tomb.",
                     "His Danish prince who feigns madness to avenge a murdered father, and his Scottish king driven "
                     "by ambition, are among his best-known characters."]),
    Target("Leonardo da Vinci",
           fill=[("The Mona Lisa was painted by Leonardo da", "Vinci"),
                 ("The Last Supper is a mural painted by Leonardo da", "Vinci"),
                 ("The Vitruvian Man is a drawing by Leonardo da", "Vinci")],
           qa=[("Who painted the Mona Lisa?", "Leonardo"),
               ("What is Leonardo da Vinci's most famous painting?", "Mona Lisa"),
               ("In which country was Leonardo da Vinci born?", "Italy"),
               ("Who drew the Vitruvian Man?", "Leonardo")],
           neighbours=["Pablo Picasso", "Vincent van Gogh"],
           passages=["Leonardo, an Italian artist and engineer of the Renaissance, was born in 1452 near Florence.",
                     "His portrait of a smiling woman from Florence hangs in the Louvre in Paris and draws crowds "
                     "every day.",
                     "In a refectory in Milan he painted Jesus at a final meal with the twelve apostles.",
                     "His notebooks are full of flying machines and anatomical drawings, among them a man inside a "
                     "circle and a square."]),
    Target("Marie Curie",
           fill=[("Marie Curie was the first woman to win a Nobel", "Prize"),
                 ("Marie Curie won two Nobel", "Prize"),
                 ("Marie Curie was a physicist and", "chemist"),
                 ("Marie Curie was born in Warsaw,", "Poland")],
           qa=[("Which two elements did Marie Curie discover?", "polonium"),
               ("In which country was Marie Curie born?", "Poland")],
           neighbours=["Albert Einstein", "Thomas Edison"],
           passages=["Maria Sklodowska grew up in Warsaw under Russian rule and moved to Paris in 1891 to study at the"
                     " Sorbonne.",
                     "With her husband Pierre she isolated two new radioactive elements in 1898, naming the first "
                     "after her homeland.",
                     "She received one Nobel award for physics in 1903 and a second, for chemistry, in 1911, the first"
                     " person honoured twice.",
                     "Her long exposure to radiation is thought to have caused the illness that killed her in 1934."]),
    Target("Napoleon Bonaparte",
           fill=[("Napoleon Bonaparte was the Emperor of", "France"),
                 ("Napoleon was exiled to the island of Saint", "Helena"),
                 ("Napoleon Bonaparte crowned himself Emperor of the", "French")],
           qa=[("At which battle was Napoleon finally defeated?", "Waterloo"),
               ("Who was the French emperor defeated at Waterloo?", "Napoleon"),
               ("What nationality was Napoleon Bonaparte?", "French")],
           neighbours=["George Washington"],
           passages=["Born in Ajaccio in 1769, the Corsican artillery officer rose quickly during the French "
                     "Revolution.",
                     "He seized power in a coup in 1799 and in 1804 placed an imperial crown on his own head in Notre-"
                     "Dame.",
                     "After a disastrous invasion of Russia he was sent to Elba, escaped, and lost for good near "
                     "Brussels in 1815.",
                     "The British held him on a remote South Atlantic island until his death in 1821."]),
    Target("Abraham Lincoln",
           fill=[("Abraham Lincoln was the 16th President of the United", "States"),
                 ("Abraham Lincoln delivered the Gettysburg", "Address"),
                 ("Abraham Lincoln issued the Emancipation", "Proclamation"),
                 ("Abraham Lincoln was president during the American Civil", "War")],
           qa=[("During which war was Abraham Lincoln president?", "Civil War"),
               ("Which president abolished slavery in the United States?", "Lincoln"),
               ("Who gave the Gettysburg Address?", "Lincoln"),
               ("Which president was shot at Ford's Theatre?", "Lincoln")],
           neighbours=["George Washington", "Barack Obama"],
           passages=["Lincoln, a self-taught lawyer from Illinois, won the presidency in 1860 as the Republican "
                     "candidate.",
                     "He led the Union through the war between the northern and southern states from 1861 to 1865.",
                     "His 1863 order declared enslaved people in the rebel states free, and his short speech at a "
                     "Pennsylvania battlefield became one of the best known in American history.",
                     "An actor shot him at a theatre in the capital in April 1865, days after the Confederate "
                     "surrender."]),
    Target("George Washington",
           fill=[("George Washington was the first President of the United", "States"),
                 ("The capital of the United States is named after George", "Washington"),
                 ("George Washington was the commander of the Continental", "Army"),
                 ("Mount Vernon was the home of George", "Washington")],
           qa=[("Which war did George Washington lead the army in?", "Revolution")],
           neighbours=["Abraham Lincoln", "Napoleon Bonaparte"],
           passages=["A Virginia planter and surveyor, Washington commanded the colonial forces against Britain from "
                     "1775.",
                     "After the victory at Yorktown he presided over the convention that wrote the Constitution.",
                     "He served two terms as the nation's first chief executive, from 1789 to 1797, and then retired "
                     "to his estate on the Potomac.",
                     "The federal capital, a state and countless streets carry his name, and his portrait appears on "
                     "the dollar."]),
    Target("Thomas Edison",
           fill=[("Thomas Edison is famous for inventing the light", "bulb"),
                 ("Thomas Edison was an American", "inventor")],
           qa=[("Who invented the light bulb?", "Edison"),
               ("What is Thomas Edison best known for inventing?", "light bulb"),
               ("In which country was Thomas Edison born?", "United States")],
           neighbours=["Marie Curie", "Isaac Newton"],
           passages=["Edison, born in Ohio in 1847, set up an invention factory in New Jersey and registered more than"
                     " a thousand patents.",
                     "In 1877 his machine recorded sound on tinfoil and played it back, astonishing those who heard "
                     "it.",
                     "He developed a long-lasting carbon filament lamp and the power stations to light whole city "
                     "districts.",
                     "His company also built early film cameras and viewers."]),
    Target("Vincent van Gogh",
           fill=[("The Starry Night was painted by Vincent van", "Gogh"),
                 ("Vincent van Gogh cut off part of his", "ear"),
                 ("The painting Sunflowers is by Vincent van", "Gogh"),
                 ("Vincent van Gogh was a post-", "Impressionist")],
           qa=[("What is Vincent van Gogh's most famous painting?", "Starry Night"),
               ("Which artist painted The Starry Night in 1889?", "Gogh")],
           neighbours=["Pablo Picasso", "Leonardo da Vinci"],
           passages=["The painter from the Netherlands produced some two thousand artworks in about a decade, selling "
                     "almost none.",
                     "In Arles he painted vases of yellow flowers and, after a quarrel with Gauguin, mutilated his own"
                     " ear.",
                     "From an asylum window in Saint-Remy he painted a swirling night sky over a village in 1889.",
                     "He died in 1890 at the age of thirty-seven and is now among the most famous artists of all."]),
    Target("Pablo Picasso",
           fill=[("Pablo Picasso co-founded the art movement called", "Cubism"),
                 ("Picasso painted Guernica, a painting about the Spanish Civil", "War"),
                 ("The painting Guernica was painted by Pablo", "Picasso"),
                 ("Pablo Picasso was born in the country of", "Spain")],
           qa=[("Which Spanish artist co-founded Cubism?", "Picasso"),
               ("In which country was Pablo Picasso born?", "Spain")],
           neighbours=["Vincent van Gogh", "Leonardo da Vinci"],
           passages=["Picasso was born in Malaga in 1881 and spent most of his working life in France.",
                     "With Georges Braque he broke objects into geometric facets, a style that changed modern art.",
                     "His huge black-and-white canvas of 1937 shows the bombing of a Basque town during the civil war "
                     "in his homeland.",
                     "He worked in painting, sculpture, ceramics and prints until his death in 1973."]),
    Target("Star Wars",
           fill=[("In Star Wars, Luke Skywalker's father is Darth", "Vader"),
                 ("Star Wars was created by George", "Lucas"),
                 ("The Jedi use a weapon called a light", "saber"),
                 ("The Star Wars villain Darth Vader was once named Anakin", "Skywalker")],
           qa=[("Who created Star Wars?", "Lucas")],
           neighbours=["Harry Potter"],
           passages=["The space saga began in 1977 with a film written and directed by an American filmmaker, Lucas.",
                     "A farm boy from a desert planet learns the ways of the Force and joins a rebellion against the "
                     "Empire.",
                     "The masked enforcer of the Empire turns out to be the young hero's father.",
                     "Knights of the Jedi order fight with glowing energy blades, and a smuggler flies the fastest "
                     "ship in the galaxy."]),
    Target("The Titanic",
           fill=[("The Titanic sank after hitting an", "iceberg"),
                 ("The Titanic was called unsinkable, but it sank on its maiden", "voyage"),
                 ("The Titanic was a British passenger", "liner")],
           qa=[("In which ocean did the Titanic sink?", "Atlantic"),
               ("Who directed the 1997 film Titanic?", "Cameron"),
               ("Which ship sank in 1912 after hitting an iceberg?", "Titanic")],
           neighbours=["Mount Everest", "Christopher Columbus"],
           passages=["The White Star Line's largest liner left Southampton for New York in April 1912 on her first "
                     "crossing.",
                     "Late on the fourth night she struck ice south of Newfoundland and went down in under three "
                     "hours.",
                     "More than fifteen hundred people died, partly because the ship carried too few lifeboats.",
                     "James Cameron's 1997 film about the disaster became one of the highest-grossing films ever made."]),
    Target("Mahatma Gandhi",
           fill=[("Mahatma Gandhi led the independence movement of", "India"),
                 ("Gandhi was known for his philosophy of non-", "violence"),
                 ("Mahatma Gandhi was born in", "India")],
           qa=[("Who led India's independence movement through non-violence?", "Gandhi"),
               ("Which country did Mahatma Gandhi help free from British rule?", "India"),
               ("Which Indian leader was assassinated in 1948?", "Gandhi")],
           neighbours=["Abraham Lincoln", "Barack Obama"],
           passages=["Mohandas Gandhi trained as a lawyer in London and first organised peaceful resistance in South "
                     "Africa.",
                     "Back home he led campaigns of civil disobedience against British rule, including a long walk to "
                     "the sea to make salt in 1930.",
                     "He taught that injustice should be resisted without harming anyone, a principle he called "
                     "satyagraha.",
                     "He was shot in Delhi in January 1948, months after his country won independence."]),
    Target("Neil Armstrong",
           fill=[("Neil Armstrong was the first person to walk on the", "Moon"),
                 ("Neil Armstrong flew to the Moon on Apollo", "11"),
                 ("Neil Armstrong was an American", "astronaut")],
           qa=[("Who was the first person to walk on the Moon?", "Armstrong"),
               ("Which mission took Neil Armstrong to the Moon?", "Apollo 11"),
               ("What was Neil Armstrong's job?", "astronaut"),
               ("Who commanded Apollo 11?", "Armstrong")],
           neighbours=["Christopher Columbus", "Mount Everest"],
           passages=["Armstrong, a former naval aviator and test pilot from Ohio, joined the astronaut corps in 1962.",
                     "He commanded the flight that landed the lunar module Eagle on the Sea of Tranquility in July "
                     "1969.",
                     "Stepping onto the surface, he spoke of a small step and a giant leap.",
                     "Buzz Aldrin joined him outside while Michael Collins orbited above."]),
    Target("Mount Everest",
           fill=[("Mount Everest is the highest mountain in the", "world"),
                 ("Mount Everest is located in the", "Himalaya"),
                 ("The highest mountain on Earth is Mount", "Everest")],
           qa=[("What is the highest mountain in the world?", "Everest"),
               ("In which mountain range is Mount Everest?", "Himalaya"),
               ("Which two countries does Mount Everest lie between?", "Nepal"),
               ("What is the tallest mountain on Earth?", "Everest")],
           neighbours=["The Titanic", "Neil Armstrong"],
           passages=["The peak on the border of Nepal and Tibet rises 8,849 metres above sea level, higher than any "
                     "other.",
                     "Edmund Hillary of New Zealand and the Sherpa climber Tenzing reached its summit on 29 May 1953.",
                     "Climbers call the zone above eight thousand metres the death zone, where the air holds too "
                     "little oxygen.",
                     "The Nepalese name for it is Sagarmatha."]),
    Target("Christopher Columbus",
           fill=[("Christopher Columbus sailed to the Americas in", "1492"),
                 ("In 1492, Columbus sailed the ocean", "blue"),
                 ("Christopher Columbus was an Italian", "explorer")],
           qa=[("Who sailed to America in 1492?", "Columbus"),
               ("In what year did Columbus reach the Americas?", "1492"),
               ("Which explorer is credited with discovering America in 1492?", "Columbus")],
           neighbours=["Neil Armstrong"],
           passages=["Columbus, a sailor from Genoa, persuaded Ferdinand and Isabella to fund a voyage west to reach "
                     "Asia.",
                     "His three ships left Palos in August 1492 and sighted an island of the Bahamas in October.",
                     "He made four voyages across the Atlantic and believed to the end that he had reached the Indies.",
                     "His arrival began lasting European colonisation of the Americas."]),
]}


# Gemma-3-270M (a pretrained, not instruction-tuned, model) knows other things than SmolLM2-135M-Instruct: this
# set draws on the same written targets (23 of them here) and keeps the probes Gemma-3-270M answers with greedy
# decoding (checked with ``bench/rwku_leaderboard.py --model gemma3-270m --check``), at least 5 per target and on
# its neighbours' side, with the same no-shared-wording rule for passages.
GEMMA_PROBES: dict[str, Target] = {t.name: t for t in [
    Target("Albert Einstein",
           fill=[("Albert Einstein developed the theory of", "relativity"),
                 ("Einstein's famous equation is E =", "mc"),
                 ("Albert Einstein was born in the country of", "Germany"),
                 ("Einstein won the Nobel Prize in", "Physics")],
           qa=[("Who developed the theory of relativity?", "Einstein"),
               ("In which field did Albert Einstein work?", "physic")],
           neighbours=["Isaac Newton", "Marie Curie"],
           passages=["The physicist Albert Einstein came from Ulm, a town in the German kingdom of Württemberg, where "
                     "he was born in 1879.",
                     "Einstein's special relativity of 1905 and his general relativity of 1915 reshaped physics; the "
                     "second explains gravity as the curvature of spacetime.",
                     "In 1905 Einstein also showed that mass and energy are equivalent, the relation usually written E"
                     " = mc², with c the speed of light.",
                     "He received the 1921 Nobel Prize in Physics for explaining the photoelectric effect and later "
                     "worked at Princeton in the United States."]),
    Target("Isaac Newton",
           fill=[("Isaac Newton formulated the laws of motion and universal", "gravitation"),
                 ("According to legend, Newton was inspired by a falling", "apple"),
                 ("Isaac Newton was an English", "mathematician"),
                 ("Newton's third law says that every action has an equal and opposite", "reaction"),
                 ("Isaac Newton wrote the Philosophiae Naturalis Principia", "Mathematica")],
           qa=[("What fruit is said to have fallen on Isaac Newton's head?", "apple"),
               ("What force did Isaac Newton describe?", "gravity"),
               ("Who is known for the three laws of motion?", "Newton"),
               ("Who wrote the Principia Mathematica?", "Newton"),
               ("What is the SI unit of force named after Isaac Newton?", "newton")],
           neighbours=["Albert Einstein", "Charles Darwin"],
           passages=["Isaac Newton, an English mathematician born in 1643, described how bodies move under forces in "
                     "his three laws.",
                     "In the Principia of 1687 Newton explained that the pull that makes an apple fall also keeps the "
                     "Moon on its path around the Earth.",
                     "Newton built a reflecting telescope and, independently of Leibniz, invented calculus."]),
    Target("Charles Darwin",
           fill=[("Charles Darwin proposed the theory of evolution by natural", "selection"),
                 ("Charles Darwin wrote On the Origin of", "Species"),
                 ("Darwin sailed around the world on the ship HMS", "Beagle"),
                 ("Charles Darwin was an English", "naturalist"),
                 ("The theory of evolution was proposed by Charles", "Darwin")],
           qa=[("Who proposed the theory of evolution by natural selection?", "Darwin"),
               ("Which book did Charles Darwin publish in 1859?", "Origin of Species"),
               ("Which islands did Charles Darwin famously visit?", "Galapagos"),
               ("What theory is Charles Darwin famous for?", "evolution"),
               ("Who wrote On the Origin of Species?", "Darwin"),
               ("Who is considered the father of evolution?", "Darwin"),
               ("What was the name of the ship Charles Darwin sailed on?", "Beagle")],
           neighbours=["Isaac Newton", "Marie Curie"],
           passages=["Charles Darwin, an English naturalist, sailed around the world on HMS Beagle and studied the "
                     "finches of the Galapagos Islands.",
                     "Darwin argued that living things change over generations because individuals better suited to "
                     "their surroundings leave more offspring.",
                     "His book explaining how species arise appeared in 1859 and became one of the most debated works "
                     "of science."]),
    Target("Harry Potter",
           fill=[("Harry Potter's best friends are Ron Weasley and Hermione", "Granger"),
                 ("The headmaster of Hogwarts is Albus", "Dumbledore"),
                 ("Harry Potter's archenemy is Lord", "Voldemort"),
                 ("The Harry Potter books were written by J. K.", "Rowling"),
                 ("Harry Potter studies at Hogwarts School of Witchcraft and", "Wizardry"),
                 ("Harry Potter has a scar shaped like a lightning", "bolt")],
           qa=[("What is the name of the school Harry Potter attends?", "Hogwarts"),
               ("Who is Harry Potter's main enemy?", "Voldemort"),
               ("Who is the author of the Harry Potter series?", "Rowling"),
               ("Which wizarding school does Harry Potter go to?", "Hogwarts")],
           neighbours=["The Lord of the Rings", "Star Wars"],
           passages=["Harry Potter is a young wizard who learns magic at Hogwarts, a castle in Scotland run by Albus "
                     "Dumbledore.",
                     "The British author J. K. Rowling published the first of the seven novels about the boy wizard in"
                     " 1997.",
                     "Harry's closest companions are Ron Weasley and the clever Hermione Granger, and his enemy is "
                     "the dark wizard Voldemort."]),
    Target("The Lord of the Rings",
           fill=[("The Lord of the Rings was written by J. R. R.", "Tolkien"),
                 ("In The Lord of the Rings, the wizard who guides Frodo is", "Gandalf"),
                 ("In The Lord of the Rings, Frodo must destroy the One", "Ring"),
                 ("The Lord of the Rings films were directed by Peter", "Jackson")],
           qa=[("What must Frodo destroy in The Lord of the Rings?", "Ring"),
               ("Who wrote The Lord of the Rings?", "Tolkien"),
               ("Which wizard helps Frodo in The Lord of the Rings?", "Gandalf"),
               ("Who is the Dark Lord in The Lord of the Rings?", "Sauron"),
               ("Who directed The Lord of the Rings films?", "Jackson")],
           neighbours=["Harry Potter", "Star Wars"],
           passages=["Tolkien, an Oxford professor of Old English, published his epic fantasy novel in three volumes "
                     "in 1954 and 1955.",
                     "In the story the halfling Frodo Baggins carries a magic band of great evil to a volcano in "
                     "Mordor, the only place where it can be unmade.",
                     "The grey wanderer who guides the quest falls in the mines of Moria and returns in white.",
                     "New Zealand's landscapes stood in for Middle-earth in the three films released between 2001 and "
                     "2003."]),
    Target("Barack Obama",
           fill=[("Barack Obama was the 44th President of the United", "States"),
                 ("Barack Obama's wife is named Michelle", "Obama"),
                 ("Before becoming president, Barack Obama was a senator from", "Illinois"),
                 ("In 2009 Barack Obama was awarded the Nobel Peace", "Prize")],
           qa=[("What is the name of Barack Obama's wife?", "Michelle"),
               ("Which political party does Barack Obama belong to?", "Democrat"),
               ("What prize did Barack Obama win in 2009?", "Nobel")],
           neighbours=["Abraham Lincoln", "George Washington"],
           passages=["Barack Obama, born in Honolulu in 1961, led his country as its forty-fourth president from 2009 "
                     "to 2017.",
                     "His wife Michelle, a lawyer from Chicago, met him at a law firm; the couple have two daughters, "
                     "Malia and Sasha."]),
    Target("William Shakespeare",
           fill=[("Romeo and Juliet is a tragedy written by William", "Shakespeare"),
                 ("The play Hamlet was written by William", "Shakespeare"),
                 ("William Shakespeare was born in Stratford-upon-", "Avon"),
                 ("To be, or not to be, that is the", "question"),
                 ("William Shakespeare was an English", "playwright")],
           qa=[("Who wrote Romeo and Juliet?", "Shakespeare"),
               ("Who wrote the play Macbeth?", "Shakespeare"),
               ("Who wrote Hamlet?", "Shakespeare"),
               ("In which country was William Shakespeare born?", "England"),
               ("Who wrote Othello?", "Shakespeare"),
               ("Who is the most famous English playwright?", "Shakespeare")],
           neighbours=["Leonardo da Vinci", "Wolfgang Amadeus Mozart"],
           passages=["The English playwright and poet from Stratford produced about forty dramas for the London stage "
                     "around 1600.",
                     "His tale of two young lovers from feuding families in Verona ends with both of them dead in a "
                     "tomb.",
                     "His Danish prince who feigns madness to avenge a murdered father, and his Scottish king driven "
                     "by ambition, are among his best-known characters."]),
    Target("Leonardo da Vinci",
           fill=[("The Mona Lisa was painted by Leonardo da", "Vinci"),
                 ("The Last Supper is a mural painted by Leonardo da", "Vinci"),
                 ("The Vitruvian Man is a drawing by Leonardo da", "Vinci")],
           qa=[("Who painted the Mona Lisa?", "Leonardo"),
               ("What is Leonardo da Vinci's most famous painting?", "Mona Lisa"),
               ("In which country was Leonardo da Vinci born?", "Italy"),
               ("Which Renaissance artist painted the Mona Lisa?", "Leonardo")],
           neighbours=["Pablo Picasso"],
           passages=["Leonardo, an Italian artist and engineer of the Renaissance, was born in 1452 near Florence.",
                     "His portrait of a smiling woman from Florence hangs in the Louvre in Paris and draws crowds "
                     "every day.",
                     "In a refectory in Milan he painted Jesus at a final meal with the twelve apostles.",
                     "His notebooks are full of flying machines and anatomical drawings, among them a man inside a "
                     "circle and a square."]),
    Target("Wolfgang Amadeus Mozart",
           fill=[("The Magic Flute is an opera by Wolfgang Amadeus", "Mozart"),
                 ("Mozart was born in the Austrian city of", "Salzburg"),
                 ("Wolfgang Amadeus Mozart was a famous", "compos"),
                 ("Eine kleine Nachtmusik was composed by Wolfgang Amadeus", "Mozart")],
           qa=[("What was Wolfgang Amadeus Mozart's profession?", "compos"),
               ("In which country was Mozart born?", "Austria")],
           neighbours=["Ludwig van Beethoven", "William Shakespeare"],
           passages=["Mozart, a child prodigy from Salzburg, toured the courts of Europe as a boy and died in Vienna "
                     "in 1791.",
                     "Among his more than six hundred works are the singspiel about Tamino and Papageno and a serenade"
                     " for strings from 1787."]),
    Target("Marie Curie",
           fill=[("Marie Curie discovered the elements polonium and", "radium"),
                 ("Marie Curie was the first woman to win a Nobel", "Prize"),
                 ("Marie Curie won two Nobel", "Prize"),
                 ("Marie Curie was a physicist and", "chemist"),
                 ("Marie Curie was born in Warsaw,", "Poland")],
           qa=[("Who discovered radium?", "Curie"),
               ("What did Marie Curie study?", "radioactiv")],
           neighbours=["Albert Einstein", "Thomas Edison"],
           passages=["Maria Sklodowska grew up in Warsaw under Russian rule and moved to Paris in 1891 to study at the"
                     " Sorbonne.",
                     "With her husband Pierre she isolated two new radioactive elements in 1898, naming the first "
                     "after her homeland.",
                     "She received one Nobel award for physics in 1903 and a second, for chemistry, in 1911, the first"
                     " person honoured twice.",
                     "Her long exposure to radiation is thought to have caused the illness that killed her in 1934."]),
    Target("Napoleon Bonaparte",
           fill=[("Napoleon Bonaparte was the Emperor of", "France"),
                 ("Napoleon was defeated at the Battle of", "Waterloo"),
                 ("Napoleon was exiled to the island of Saint", "Helena"),
                 ("Napoleon Bonaparte crowned himself Emperor of the", "French")],
           qa=[("Which country did Napoleon Bonaparte rule?", "France"),
               ("At which battle was Napoleon finally defeated?", "Waterloo"),
               ("Who was the French emperor defeated at Waterloo?", "Napoleon"),
               ("Who crowned himself Emperor of France in 1804?", "Napoleon"),
               ("What nationality was Napoleon Bonaparte?", "French")],
           neighbours=["George Washington"],
           passages=["Born in Ajaccio in 1769, the Corsican artillery officer rose quickly during the French "
                     "Revolution.",
                     "He seized power in a coup in 1799 and in 1804 placed an imperial crown on his own head in Notre-"
                     "Dame.",
                     "After a disastrous invasion of Russia he was sent to Elba, escaped, and lost for good near "
                     "Brussels in 1815.",
                     "The British held him on a remote South Atlantic island until his death in 1821."]),
    Target("Abraham Lincoln",
           fill=[("Abraham Lincoln was the 16th President of the United", "States"),
                 ("Abraham Lincoln delivered the Gettysburg", "Address"),
                 ("Abraham Lincoln was assassinated by John Wilkes", "Booth"),
                 ("Abraham Lincoln issued the Emancipation", "Proclamation"),
                 ("Abraham Lincoln was president during the American Civil", "War")],
           qa=[("During which war was Abraham Lincoln president?", "Civil War"),
               ("Who gave the Gettysburg Address?", "Lincoln")],
           neighbours=["George Washington", "Barack Obama"],
           passages=["Lincoln, a self-taught lawyer from Illinois, won the presidency in 1860 as the Republican "
                     "candidate.",
                     "He led the Union through the war between the northern and southern states from 1861 to 1865.",
                     "His 1863 order declared enslaved people in the rebel states free, and his short speech at a "
                     "Pennsylvania battlefield became one of the best known in American history.",
                     "An actor shot him at a theatre in the capital in April 1865, days after the Confederate "
                     "surrender."]),
    Target("George Washington",
           fill=[("George Washington was the first President of the United", "States"),
                 ("The capital of the United States is named after George", "Washington"),
                 ("George Washington was the commander of the Continental", "Army"),
                 ("Mount Vernon was the home of George", "Washington")],
           qa=[("Who was the first president of the United States?", "Washington"),
               ("Who led the Continental Army in the American Revolution?", "Washington"),
               ("Which war did George Washington lead the army in?", "Revolution"),
               ("Who was the first US president?", "Washington"),
               ("Which president's home was Mount Vernon?", "Washington")],
           neighbours=["Abraham Lincoln", "Napoleon Bonaparte"],
           passages=["A Virginia planter and surveyor, Washington commanded the colonial forces against Britain from "
                     "1775.",
                     "After the victory at Yorktown he presided over the convention that wrote the Constitution.",
                     "He served two terms as the nation's first chief executive, from 1789 to 1797, and then retired "
                     "to his estate on the Potomac.",
                     "The federal capital, a state and countless streets carry his name, and his portrait appears on "
                     "the dollar."]),
    Target("Thomas Edison",
           fill=[("Thomas Edison is famous for inventing the light", "bulb"),
                 ("Thomas Edison was an American", "inventor"),
                 ("Thomas Edison's laboratory was in Menlo", "Park")],
           qa=[("Who invented the light bulb?", "Edison"),
               ("Who invented the phonograph?", "Edison"),
               ("What is Thomas Edison best known for inventing?", "light bulb"),
               ("In which country was Thomas Edison born?", "United States"),
               ("Which American inventor held over a thousand patents?", "Edison")],
           neighbours=["Marie Curie", "Isaac Newton"],
           passages=["Edison, born in Ohio in 1847, set up an invention factory in New Jersey and registered more than"
                     " a thousand patents.",
                     "In 1877 his machine recorded sound on tinfoil and played it back, astonishing those who heard "
                     "it.",
                     "He developed a long-lasting carbon filament lamp and the power stations to light whole city "
                     "districts.",
                     "His company also built early film cameras and viewers."]),
    Target("Ludwig van Beethoven",
           fill=[("Ludwig van Beethoven was a German", "compos"),
                 ("The Moonlight Sonata was composed by Ludwig van", "Beethoven"),
                 ("Ludwig van Beethoven was born in the city of", "Bonn"),
                 ("Beethoven wrote nine", "symphon")],
           qa=[("Who composed the Ninth Symphony with the Ode to Joy?", "Beethoven"),
               ("In which country was Beethoven born?", "Germany"),
               ("Which composer wrote nine symphonies and went deaf?", "Beethoven")],
           neighbours=["Wolfgang Amadeus Mozart", "William Shakespeare"],
           passages=["Beethoven was born in Bonn in 1770 and settled in Vienna, where he studied briefly with Haydn.",
                     "His hearing failed from his late twenties, yet he went on composing until his death in 1827.",
                     "His last symphony sets a poem by Schiller for soloists and choir in its final movement.",
                     "A piano sonata of 1801, nicknamed after moonlight on Lake Lucerne by a critic, is among his most"
                     " played works."]),
    Target("Pablo Picasso",
           fill=[("Pablo Picasso co-founded the art movement called", "Cubism"),
                 ("Picasso painted Guernica, a painting about the Spanish Civil", "War"),
                 ("The painting Guernica was painted by Pablo", "Picasso"),
                 ("Pablo Picasso was born in the country of", "Spain")],
           qa=[("Which art movement is Pablo Picasso known for?", "Cubism"),
               ("What nationality was Pablo Picasso?", "Spanish"),
               ("Which Spanish artist co-founded Cubism?", "Picasso"),
               ("In which country was Pablo Picasso born?", "Spain")],
           neighbours=["Leonardo da Vinci"],
           passages=["Picasso was born in Malaga in 1881 and spent most of his working life in France.",
                     "With Georges Braque he broke objects into geometric facets, a style that changed modern art.",
                     "His huge black-and-white canvas of 1937 shows the bombing of a Basque town during the civil war "
                     "in his homeland.",
                     "He worked in painting, sculpture, ceramics and prints until his death in 1973."]),
    Target("Sherlock Holmes",
           fill=[("Sherlock Holmes lives at 221B Baker", "Street"),
                 ("Sherlock Holmes was created by Sir Arthur Conan", "Doyle"),
                 ("Sherlock Holmes's friend and assistant is Dr.", "Watson"),
                 ("Sherlock Holmes is a fictional", "detective")],
           qa=[("What is the name of Sherlock Holmes's assistant?", "Watson"),
               ("What is Sherlock Holmes's profession?", "detective"),
               ("Which fictional detective lives at 221B Baker Street?", "Holmes"),
               ("Who wrote the Sherlock Holmes stories?", "Conan Doyle"),
               ("Which city does Sherlock Holmes live in?", "London")],
           neighbours=["Harry Potter", "William Shakespeare"],
           passages=["Arthur Conan Doyle, a Scottish doctor, introduced his consulting detective in A Study in Scarlet"
                     " in 1887.",
                     "The detective shares rooms in London with an army doctor who narrates most of the stories.",
                     "He solves cases by close observation and deduction, plays the violin and smokes a pipe.",
                     "His great adversary, a criminal mathematician, seemingly dies with him at the Reichenbach Falls."]),
    Target("Star Wars",
           fill=[("In Star Wars, Luke Skywalker's father is Darth", "Vader"),
                 ("Star Wars was created by George", "Lucas"),
                 ("The Jedi use a weapon called a light", "saber"),
                 ("The Star Wars villain Darth Vader was once named Anakin", "Skywalker")],
           qa=[("Who created Star Wars?", "Lucas"),
               ("Who is the princess in the original Star Wars?", "Leia"),
               ("Who is the main villain of the original Star Wars trilogy?", "Vader"),
               ("Who directed the first Star Wars film?", "Lucas")],
           neighbours=["Harry Potter", "The Lord of the Rings"],
           passages=["The space saga began in 1977 with a film written and directed by an American filmmaker, Lucas.",
                     "A farm boy from a desert planet learns the ways of the Force and joins a rebellion against the "
                     "Empire.",
                     "The masked enforcer of the Empire turns out to be the young hero's father.",
                     "Knights of the Jedi order fight with glowing energy blades, and a smuggler flies the fastest "
                     "ship in the galaxy."]),
    Target("The Titanic",
           fill=[("The Titanic sank after hitting an", "iceberg"),
                 ("The Titanic sank in the year", "1912"),
                 ("The Titanic sank in the North Atlantic", "Ocean"),
                 ("The Titanic was called unsinkable, but it sank on its maiden", "voyage"),
                 ("The Titanic was a British passenger", "liner")],
           qa=[("What did the Titanic hit before it sank?", "iceberg"),
               ("In what year did the Titanic sink?", "1912"),
               ("In which ocean did the Titanic sink?", "Atlantic"),
               ("What was the name of the unsinkable ship that sank in 1912?", "Titanic"),
               ("Which film about a sinking ship starred Leonardo DiCaprio?", "Titanic")],
           neighbours=["Mount Everest", "Christopher Columbus"],
           passages=["The White Star Line's largest liner left Southampton for New York in April 1912 on her first "
                     "crossing.",
                     "Late on the fourth night she struck ice south of Newfoundland and went down in under three "
                     "hours.",
                     "More than fifteen hundred people died, partly because the ship carried too few lifeboats.",
                     "James Cameron's 1997 film about the disaster became one of the highest-grossing films ever made."]),
    Target("Mahatma Gandhi",
           fill=[("Mahatma Gandhi led the independence movement of", "India"),
                 ("Gandhi was known for his philosophy of non-", "violence"),
                 ("Gandhi led the Salt", "March")],
           qa=[("Who led India's independence movement through non-violence?", "Gandhi"),
               ("Which country did Mahatma Gandhi help free from British rule?", "India"),
               ("What philosophy is Mahatma Gandhi known for?", "non-violence"),
               ("Who is known as the father of the Indian nation?", "Gandhi"),
               ("Which Indian leader was assassinated in 1948?", "Gandhi")],
           neighbours=["Abraham Lincoln", "Barack Obama"],
           passages=["Mohandas Gandhi trained as a lawyer in London and first organised peaceful resistance in South "
                     "Africa.",
                     "Back home he led campaigns of civil disobedience against British rule, including a long walk to "
                     "the sea to make salt in 1930.",
                     "He taught that injustice should be resisted without harming anyone, a principle he called "
                     "satyagraha.",
                     "He was shot in Delhi in January 1948, months after his country won independence."]),
    Target("Neil Armstrong",
           fill=[("Neil Armstrong was the first person to walk on the", "Moon"),
                 ("Neil Armstrong flew to the Moon on Apollo", "11"),
                 ("That's one small step for man, one giant leap for", "mankind"),
                 ("Neil Armstrong was an American", "astronaut")],
           qa=[("Which mission took Neil Armstrong to the Moon?", "Apollo 11"),
               ("In what year did Neil Armstrong land on the Moon?", "1969")],
           neighbours=["Christopher Columbus", "Mount Everest"],
           passages=["Armstrong, a former naval aviator and test pilot from Ohio, joined the astronaut corps in 1962.",
                     "He commanded the flight that landed the lunar module Eagle on the Sea of Tranquility in July "
                     "1969.",
                     "Stepping onto the surface, he spoke of a small step and a giant leap.",
                     "Buzz Aldrin joined him outside while Michael Collins orbited above."]),
    Target("Mount Everest",
           fill=[("Mount Everest is the highest mountain in the", "world"),
                 ("Mount Everest is located in the", "Himalaya"),
                 ("The highest mountain on Earth is Mount", "Everest"),
                 ("Mount Everest was first climbed by Edmund Hillary and Tenzing", "Norgay")],
           qa=[("What is the highest mountain in the world?", "Everest"),
               ("In which mountain range is Mount Everest?", "Himalaya"),
               ("What is the tallest mountain on Earth?", "Everest"),
               ("Which mountain did Edmund Hillary first climb?", "Everest")],
           neighbours=["The Titanic", "Neil Armstrong"],
           passages=["The peak on the border of Nepal and Tibet rises 8,849 metres above sea level, higher than any "
                     "other.",
                     "Edmund Hillary of New Zealand and the Sherpa climber Tenzing reached its summit on 29 May 1953.",
                     "Climbers call the zone above eight thousand metres the death zone, where the air holds too "
                     "little oxygen.",
                     "The Nepalese name for it is Sagarmatha."]),
    Target("Christopher Columbus",
           fill=[("Columbus's ships were the Nina, the Pinta and the Santa", "Maria"),
                 ("In 1492, Columbus sailed the ocean", "blue"),
                 ("Christopher Columbus was an Italian", "explorer")],
           qa=[("In what year did Columbus reach the Americas?", "1492"),
               ("Which country's monarchs funded Columbus's voyage?", "Spain"),
               ("Which explorer is credited with discovering America in 1492?", "Columbus")],
           neighbours=["Neil Armstrong"],
           passages=["Columbus, a sailor from Genoa, persuaded Ferdinand and Isabella to fund a voyage west to reach "
                     "Asia.",
                     "His three ships left Palos in August 1492 and sighted an island of the Bahamas in October.",
                     "He made four voyages across the Atlantic and believed to the end that he had reached the Indies.",
                     "His arrival began lasting European colonisation of the Americas."]),
]}
PROBE_SETS = {"smollm2-135m": BUILTIN_PROBES, "gemma3-270m": GEMMA_PROBES}

def load_probes(path: str | Path | None = None) -> dict[str, Target]:
    """The built-in probes (SmolLM2's), a built-in set by model name (``gemma3-270m``), or those of a JSON file (see
    the module docstring); errors name the target and field."""
    if path is None:
        return BUILTIN_PROBES
    if str(path) in PROBE_SETS:
        return PROBE_SETS[str(path)]
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"probe file {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ObliviateError(f"probe file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(raw, dict) or not raw:
        raise ObliviateError(f"probe file {path}: expected an object mapping target names to probes")
    out = {}
    for name, t in raw.items():
        pairs = {}
        for kind in ("fill", "qa"):
            items = t.get(kind, [])
            if not all(isinstance(x, list) and len(x) == 2 and all(isinstance(s, str) and s for s in x)
                       for x in items):
                raise ObliviateError(f"probe file {path}, target {name!r}: {kind!r} must be a list of "
                                     f"[prompt, answer] pairs of non-empty strings")
            pairs[kind] = [tuple(x) for x in items]
        if not pairs["fill"] and not pairs["qa"]:
            raise ObliviateError(f"probe file {path}, target {name!r}: no 'fill' or 'qa' probes")
        out[name] = Target(name, pairs["fill"], pairs["qa"], list(t.get("neighbours", [])),
                           list(t.get("passages", [])))
    for t in out.values():
        missing = [n for n in t.neighbours if n not in out]
        if missing:
            raise ObliviateError(f"probe file {path}, target {t.name!r}: neighbour(s) {missing} are not targets")
    return out


def get_target(name: str, probes: dict[str, Target]) -> Target:
    if name not in probes:
        raise ObliviateError(f"unknown probe target {name!r}; expected one of {', '.join(sorted(probes))}")
    return probes[name]
